"""Performance benchmarks (``make bench``): one JSON object per line with ``name``, ``value``,
``unit``, ``goal`` and ``ok``; ratios and times are measured within one run."""
