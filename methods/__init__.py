"""vad-eval: methods."""
