"""Two runs side by side: the paired video bootstrap of the difference of a frame metric.

Both runs are scored on the same test videos, so their difference is estimated with *paired*
resamples: each resample draws ``V`` videos with replacement once and evaluates both runs on
that same draw (:func:`tasks.metrics.bootstrap.draw_counts` and
:class:`tasks.metrics.pool.FramePool`, the harness's own bootstrap). Pairing removes the
between-video variance the two runs share, so the interval of ``a - b`` is much narrower than
what two independent intervals suggest.

Reported: the observed ``a``, ``b`` and ``a - b`` on all common videos; the percentile interval
of ``a - b`` over resamples; and the share of resamples in which ``a - b <= 0`` (a one-sided
bootstrap p-value for "run A is better"). Resamples where the metric is undefined (no
positive or no negative frame drawn) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leaderboard.run_data import RunDataError, VideoTrace

CURVE_METRICS = ("roc_auc", "pr_auc", "average_precision")


@dataclass(frozen=True)
class PairedDifference:
    """Result of :func:`paired_bootstrap` (``a``/``b`` are the two runs, in the order given)."""

    metric: str
    a: float
    b: float
    diff: float
    lo: float
    hi: float
    p_not_better: float
    n_videos: int
    resamples: int
    seed: int
    level: float


def paired_bootstrap(a: Sequence[VideoTrace], b: Sequence[VideoTrace], metric: str = "roc_auc",
                     n: int = 1000, seed: int = 0, level: float = 0.95) -> PairedDifference:
    """Paired video bootstrap of ``metric(a) - metric(b)`` over the videos both runs scored.

    Raises:
        RunDataError: no common video, an unknown metric, or runs whose ground truth differs
            for a common video (not the same task and dataset).
    """
    from tasks.metrics.bootstrap import draw_counts, percentile_interval
    from tasks.metrics.pool import FramePool

    if metric not in CURVE_METRICS:
        raise RunDataError(f"paired bootstrap supports {', '.join(CURVE_METRICS)}, "
                           f"not {metric!r}")
    by_id = {t.video_id: t for t in b}
    pairs = [(t, by_id[t.video_id]) for t in a if t.video_id in by_id]
    if not pairs:
        raise RunDataError("the two runs have no scored video in common")
    for ta, tb in pairs:
        if not np.array_equal(ta.labels, tb.labels):
            raise RunDataError(f"video {ta.video_id!r}: the runs' ground truth differs (not the "
                               "same task and dataset)")
    labels = [ta.labels for ta, _ in pairs]
    pool_a = FramePool.build(labels, [ta.scores for ta, _ in pairs])
    pool_b = FramePool.build(labels, [tb.scores for _, tb in pairs])
    v = len(pairs)
    roc_only = metric == "roc_auc"  # skips the precision-recall work when it is not needed
    ones = np.ones(v, dtype=np.int64)
    obs_a = float(pool_a.metrics(ones, roc_only)[metric])
    obs_b = float(pool_b.metrics(ones, roc_only)[metric])
    lo = hi = p = float("nan")
    if n > 0:
        counts = draw_counts(v, n, seed)
        d = pool_a.metrics(counts, roc_only)[metric] - pool_b.metrics(counts, roc_only)[metric]
        lo, hi = percentile_interval(d, level)
        d = d[np.isfinite(d)]
        p = float(np.mean(d <= 0.0)) if d.size else float("nan")
    return PairedDifference(metric, obs_a, obs_b, obs_a - obs_b, lo, hi, p, v, n, seed, level)
