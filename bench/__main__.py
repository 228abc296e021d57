"""Run every benchmark: ``python -m bench``."""

from __future__ import annotations

from bench import captions, decode, metrics, overhead

for mod in (decode, metrics, overhead, captions):
    mod.main()
