"""Reinforcement-learning pieces shared by the trained methods (one GRPO for the project)."""
