"""Run every benchmark: ``python -m bench``."""

from __future__ import annotations

from bench import decode, metrics, overhead

for mod in (decode, metrics, overhead):
    mod.main()
