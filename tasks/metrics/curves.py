"""The one ROC / precision-recall curve implementation behind every frame metric.

Everything starts from one descending sort of the scores. Tied scores form one threshold group
(as in scikit-learn's ``confusion_matrix_at_thresholds``): ``dp[i]`` / ``dn[i]`` are the
(weighted) counts of positive / negative frames in the ``i``-th group, so their cumulative sums
are sklearn's ``tps`` / ``fps``. From those counts :func:`curve_metrics` computes, for one curve
or many at once:

* ``roc_auc``: trapezoidal area under (FPR, TPR) with (0, 0) prepended, as
  ``sklearn.metrics.auc(*roc_curve(...)[:2])``.
* ``pr_auc``: trapezoidal area under (recall, precision) with the end point (recall 0,
  precision 1), as ``auc(recall, precision)`` on ``precision_recall_curve``.
* ``average_precision``: the step sum ``sum((R_i - R_{i-1}) * P_i)``, as
  ``average_precision_score``.

Counts may be weighted (video bootstrap, class subsets). With integer weights the counts are
summed in int64, exactly, and a weighted curve equals the curve of the data with each video
repeated ``weight`` times. A threshold group whose weight is zero adds a duplicate
point and no area; a leading group with no weight at all has precision 0/0, taken as 1 (the
curve's start point) so that it adds no area either.
"""

from __future__ import annotations

import numpy as np


def check_inputs(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(N,)`` labels (0/1 or bool) and ``(N,)`` finite scores.

    Returns:
        ``(labels, scores)`` as bool and float64 arrays.
    """
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D of equal length")
    if y.dtype != bool:
        if y.size and not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be 0/1")
        y = y.astype(bool)
    if not np.isfinite(s).all():
        raise ValueError(f"non-finite score at index {int(np.flatnonzero(~np.isfinite(s))[0])}")
    return y, s


def sort_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One descending sort and its tie groups.

    Args:
        scores: ``(N,)`` float64.

    Returns:
        ``order``: ``(N,)`` int64 permutation sorting scores in descending order;
        ``group``: ``(N,)`` int64 tie-group index of each sorted position (0 = largest score).
    """
    order = np.argsort(scores)[::-1]
    s = scores[order]
    group = np.zeros(s.shape[0], dtype=np.int64)
    if s.shape[0] > 1:
        np.cumsum(s[1:] != s[:-1], out=group[1:])
    return order, group


def curve_metrics(dp: np.ndarray, dn: np.ndarray, roc_only: bool = False,
                  ) -> dict[str, np.ndarray]:
    """ROC AUC, PR AUC (trapezoid) and step AP from per-threshold counts.

    Args:
        dp, dn: ``(T,)`` or ``(B, T)`` positive / negative counts of the ``T`` threshold groups
            in descending score order, one row per curve; their cumulative sums along the last
            axis are sklearn's ``tps`` / ``fps``. Integer counts are summed exactly in int64;
            float weights are accepted too.
        roc_only: compute ``roc_auc`` only (about half the work).

    Returns:
        ``{"roc_auc", "pr_auc", "average_precision"}`` (or ``{"roc_auc"}``), each a float64
        array of shape ``()`` or ``(B,)``. ROC AUC is NaN without positives or negatives; PR AUC
        and AP are NaN without positives.

    With ``P = tps[-1]``, ``N = fps[-1]`` and precision ``p_i = tps_i / (tps_i + fps_i)``
    (``p_0 = 1``, the curve's start point, also for leading groups of zero weight):
    ``roc = sum(dn_i * (2 tps_i - dp_i)) / (2 P N)`` (the trapezoid rule on (FPR, TPR)),
    ``ap = sum(dp_i * p_i) / P`` and ``pr = sum(dp_i * (p_i + p_{i-1})) / (2 P)``.
    """
    dp, dn = np.asarray(dp), np.asarray(dn)
    if dp.shape != dn.shape or dp.ndim not in (1, 2) or dp.shape[-1] == 0:
        raise ValueError(f"dp {dp.shape} and dn {dn.shape} must be equal (T,) or (B, T)")
    if dp.ndim == 1:
        return {k: v[0] for k, v in curve_metrics(dp[None], dn[None], roc_only).items()}
    kind = np.int64 if dp.dtype.kind in "iub" and dn.dtype.kind in "iub" else np.float64
    dp, dn = dp.astype(kind, copy=False), dn.astype(kind, copy=False)
    tps = np.cumsum(dp, axis=1)  # int64 cumsum: exact, and much faster than float64
    pos = tps[:, -1].astype(np.float64)
    neg = dn.sum(axis=1).astype(np.float64)
    # An exact integer numerator for integer counts (< 2**63 for any realistic test set).
    roc_num = 2 * np.einsum("bt,bt->b", dn, tps) - np.einsum("bt,bt->b", dn, dp)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"roc_auc": np.where((pos > 0) & (neg > 0), roc_num / (2.0 * pos * neg), np.nan)}
    if roc_only:
        return out
    # Float work in float64 arrays only (mixed int/float ufuncs are several times slower).
    total = np.cumsum(dn, axis=1)
    total += tps
    precision = tps.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision /= total.astype(np.float64)
    del total
    for b in np.flatnonzero(np.isnan(precision[:, 0])):  # 0/0: leading groups of zero weight
        row = precision[b]
        row[np.isnan(row)] = 1.0
    dp = dp.astype(np.float64)
    ap_num = np.einsum("bt,bt->b", dp, precision)
    pr_num = ap_num + np.einsum("bt,bt->b", dp[:, 1:], precision[:, :-1]) + dp[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pr_auc"] = np.where(pos > 0, pr_num / (2.0 * pos), np.nan)
        out["average_precision"] = np.where(pos > 0, np.maximum(ap_num / pos, 0.0), np.nan)
    return out


def pooled_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-threshold ``(T,)`` int64 positive / negative counts ``dp``, ``dn`` of pooled frames."""
    y, s = check_inputs(labels, scores)
    if y.size == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    order, group = sort_groups(s)
    last = np.flatnonzero(np.diff(group, append=group[-1] + 1))
    tps = np.cumsum(y[order], dtype=np.int64)[last]
    dp = np.diff(tps, prepend=0)
    dn = np.diff(last, prepend=-1) - dp
    return dp, dn
