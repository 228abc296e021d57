"""COPRA: instance-conditioned LoRA generation for a frozen VLM, trained with GRPO (seed paper
000). Modules: :mod:`~methods.copra.generator` (the parameter generator),
:mod:`~methods.copra.model` (network + checkpoints), :mod:`~methods.copra.units` (segment / chunk
/ video units), :mod:`~methods.copra.method` (the evaluation methods) and
:mod:`~methods.copra.train` (``vad-eval train --method copra``)."""
