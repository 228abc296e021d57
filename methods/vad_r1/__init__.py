"""Vad-R1 (seed paper 004): Perception-to-Cognition chain-of-thought answers, SFT and AVA-GRPO.

* :mod:`~methods.vad_r1.method`: the ``vad-r1`` method (inference on frame and language tasks);
* :mod:`~methods.vad_r1.scoring`: frame scores from an answer's class, interval and probability;
* :mod:`~methods.vad_r1.inputs`: frames, prompt and requests shared by training and inference;
* :mod:`~methods.vad_r1.policy`: the trained policy (full fine-tuning or LoRA) and checkpoints;
* :mod:`~methods.vad_r1.sft`, :mod:`~methods.vad_r1.ava_grpo`, :mod:`~methods.vad_r1.train`:
  the two training stages and ``vad-eval train --method vad-r1``;
* :mod:`~methods.vad_r1.rewards`, :mod:`~methods.vad_r1.trim`: Table 7's rewards and
  Algorithm 1's trims.
"""
