"""Percentile bootstrap intervals that resample test videos with replacement.

A resample draws ``V`` videos uniformly with replacement; video ``v`` drawn ``k`` times counts
``k`` times, i.e. its frames enter the pooled curve with weight ``k``. All resamples are drawn
up front from ``numpy.random.default_rng(seed)`` (so the result does not depend on how the work
is blocked), as a ``(V, n)`` matrix of draw counts, and every metric is evaluated on the same
resamples through :class:`~tasks.metrics.pool.FramePool` (one global sort, no re-concatenation).

The interval is ``numpy.percentile`` (linear interpolation) at ``(1 - level) / 2`` and
``(1 + level) / 2`` of the resampled values; resamples where a metric is undefined (no
positive or no negative frame drawn) are left out of that metric's percentiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tasks.metrics.pool import FramePool


@dataclass(frozen=True)
class BootstrapSpec:
    """Settings of a video bootstrap: ``n`` resamples (0 disables), ``seed``, ``level``."""

    n: int = 1000
    seed: int = 0
    level: float = 0.95


def draw_counts(n_videos: int, n: int, seed: int) -> np.ndarray:
    """``(n_videos, n)`` int64 draw counts of ``n`` resamples of ``n_videos`` videos."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_videos, size=(n, n_videos))
    flat = (idx + np.arange(n)[:, None] * n_videos).ravel()
    counts = np.bincount(flat, minlength=n * n_videos).reshape(n, n_videos)
    return np.ascontiguousarray(counts.T)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """``(lo, hi)`` percentile interval of the finite ``values`` (NaN, NaN if none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


@dataclass(frozen=True)
class BootstrapEntry:
    """One quantity to bootstrap: a pool of the ``V`` test videos (frames, or one max score
    per video), an optional ``(V,)`` 0/1 ``mask`` restricting it to a subset of the drawn videos
    (e.g. anomalous videos only), and whether only ``roc_auc`` is needed."""

    pool: FramePool
    mask: np.ndarray | None = None
    roc_only: bool = False


def bootstrap_ci(
    entries: Mapping[str, BootstrapEntry], spec: BootstrapSpec
) -> dict[str, dict[str, tuple[float, float]]]:
    """Intervals of curve metrics under one shared set of video resamples.

    Args:
        entries: name -> :class:`BootstrapEntry`; all pools hold the same ``V`` videos in the
            same order.
        spec: number of resamples, seed, confidence level.

    Returns:
        ``{name: {"roc_auc" | "pr_auc" | "average_precision": (lo, hi)}}``; empty when
        ``spec.n == 0`` or there are no videos.
    """
    if spec.n <= 0 or not entries:
        return {}
    n_videos = {e.pool.n_videos for e in entries.values()}
    if len(n_videos) != 1:
        raise ValueError(f"pools disagree on the number of videos: {sorted(n_videos)}")
    v = n_videos.pop()
    if v == 0:
        return {}
    counts = draw_counts(v, spec.n, spec.seed)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, e in entries.items():
        w = counts if e.mask is None else counts * np.asarray(e.mask, dtype=np.int64)[:, None]
        values = e.pool.metrics(w, roc_only=e.roc_only)
        out[name] = {k: percentile_interval(x, spec.level) for k, x in values.items()}
    return out
