"""vad-eval: harness."""
