"""Frame-level metrics (see :mod:`tasks.metrics.frame`)."""
