"""Run every benchmark: ``python -m bench``."""

from __future__ import annotations

from bench import (
    anom_pi,
    cache,
    captions,
    copra,
    decode,
    engines,
    hycovad,
    leaderboard,
    metrics,
    overhead,
)

for mod in (decode, metrics, overhead, captions, cache, engines, leaderboard, copra, hycovad,
            anom_pi):
    mod.main()
