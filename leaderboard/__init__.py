"""vad-eval: leaderboard."""
