"""HyCoVAD (seed paper 002): a multi-task self-supervised proposer (:mod:`.proposer`, trained by
:mod:`.train`) flags suspect frames, a rule-based LLM validator (:mod:`.validator`) confirms
them, and Exponential Majority Smoothing (:mod:`methods.ems`) turns decisions into frame scores
(:mod:`.method`)."""
