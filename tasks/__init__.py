"""vad-eval: tasks."""
