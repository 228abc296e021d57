"""Vad-R1 (seed paper 004): Perception-to-Cognition chain-of-thought answers, SFT and AVA-GRPO.
Work in progress: the rewards (:mod:`~methods.vad_r1.rewards`) and the trimming of the
anomaly-verification re-query (:mod:`~methods.vad_r1.trim`) are here; the method adapter and
the training stages follow."""
