"""Inference engines: one interface (:mod:`harness.engines.base`), several back-ends."""
