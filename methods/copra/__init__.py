"""COPRA: instance-conditioned LoRA generation for a frozen VLM (seed paper 000). Work in
progress: the per-sample LoRA injection is here; the generator, training and the method adapter
follow."""
