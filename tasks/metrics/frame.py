"""Frame-level VAD metrics: pure functions, frames pooled over all videos.

Pooling: the frames of all test videos are concatenated into one label vector and one score
vector and a single curve is computed; nothing is averaged per video (LAVAD, VERA, VADTree,
RTFM, UR-DMU, VadCLIP, AnomalyRuler all do this). Labels are 0/1 per 0-based frame (see
:mod:`tasks.labels` for the interval-end convention), scores are finite floats, higher = more
anomalous. Ties are handled as in scikit-learn: tied scores are one threshold.

"AP" means different things in different codebases, so both are here under distinct names:

* :func:`pr_auc`: trapezoidal area under the precision-recall curve,
  ``auc(recall, precision)`` on ``precision_recall_curve``. This is the "AP" of LAVAD, VERA,
  RTFM, UR-DMU, VADTree and the XD-Violence tables built on them.
* :func:`average_precision`: scikit-learn's step ``average_precision_score`` (VadCLIP).

The curves come from :mod:`tasks.metrics.curves` (one argsort, cumulative counts); subset and
bootstrap metrics reuse one sort through :class:`~tasks.metrics.pool.FramePool`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tasks.base import NORMAL
from tasks.metrics.bootstrap import BootstrapEntry, BootstrapSpec, bootstrap_ci
from tasks.metrics.curves import curve_metrics, pooled_counts
from tasks.metrics.pool import FramePool

__all__ = [
    "BootstrapEntry",
    "BootstrapSpec",
    "FramePool",
    "anomalous_videos_metrics",
    "average_precision",
    "bootstrap_ci",
    "per_class_metrics",
    "pooled_metrics",
    "pr_auc",
    "roc_auc",
    "video_max_scores",
    "video_roc_auc",
]


def pooled_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """``roc_auc``, ``pr_auc`` and ``average_precision`` of ``(N,)`` pooled frames, one sort.

    Conventions as in :func:`roc_auc`, :func:`pr_auc` and :func:`average_precision`.
    """
    return {k: float(v) for k, v in curve_metrics(*pooled_counts(labels, scores)).items()}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Frame-level ROC AUC of ``(N,)`` 0/1 labels and ``(N,)`` scores.

    Trapezoidal area under the ROC curve, as ``sklearn.metrics.auc(fpr, tpr)`` on
    ``roc_curve`` (LAVAD ``src/eval.py``, VERA ``compute_auc.py``, VADTree, RTFM, UR-DMU).
    NaN when all labels are equal.
    """
    return pooled_metrics(labels, scores)["roc_auc"]


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Trapezoidal area under the precision-recall curve of ``(N,)`` frames.

    ``auc(recall, precision)`` on ``precision_recall_curve``, end point (recall 0, precision 1)
    included: the "AP" reported by LAVAD, VERA (XD), RTFM, UR-DMU and VADTree. NaN without
    positive frames.
    """
    return pooled_metrics(labels, scores)["pr_auc"]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step average precision ``sum((R_i - R_{i-1}) * P_i)`` of ``(N,)`` frames.

    Equals ``sklearn.metrics.average_precision_score`` (VadCLIP's "AP"). NaN without positive
    frames.
    """
    return pooled_metrics(labels, scores)["average_precision"]


def video_max_scores(scores: Sequence[np.ndarray]) -> np.ndarray:
    """``(V,)`` video scores: the maximum frame score of each video."""
    return np.array([float(np.max(s)) for s in scores], dtype=np.float64)


def video_roc_auc(video_labels: np.ndarray, video_scores: np.ndarray) -> float:
    """Video-level ROC AUC over ``(V,)`` videos.

    Convention (ours; no reproduced codebase defines one for frame scorers): a video's label is
    1 when it is anomalous (its category is not ``"Normal"``), its score is its maximum frame
    score (:func:`video_max_scores`), and the AUC is the trapezoidal ROC AUC over videos.
    """
    return pooled_metrics(video_labels, video_scores)["roc_auc"]


def per_class_metrics(
    pool: FramePool, categories: Sequence[str], with_normal: bool = False
) -> dict[str, dict[str, float]]:
    """Per-class ``roc_auc`` / ``pr_auc`` over the frames of one class's videos.

    Convention (VADTree ``src/utils/eval_utils.py``, checked against the per-class values
    stored in its UCF-Crime result files): a class's curve pools the frames of the videos of
    that class *only*, so it measures localisation inside those videos. ``with_normal=True``
    adds the frames of all normal videos (the other common definition). Videos with a
    multi-label category (``"Shooting,Explosion"``) enter no class (VADTree skips them too);
    ``"Normal"`` gets no entry.

    Args:
        pool: the pooled frames of the ``V`` videos.
        categories: ``(V,)`` category per video, same order as the pool.
        with_normal: add all normal videos to every class.

    Returns:
        ``{class: {"roc_auc", "pr_auc", "n_videos"}}`` in sorted class order.
    """
    cats = np.asarray(list(categories), dtype=object)
    if cats.shape[0] != pool.n_videos:
        raise ValueError(f"{cats.shape[0]} categories for {pool.n_videos} videos")
    classes = sorted({c for c in cats if c != NORMAL and "," not in c})
    if not classes:
        return {}
    normal = cats == NORMAL
    masks = np.stack([(cats == c) | (normal if with_normal else False) for c in classes], axis=1)
    values = pool.metrics(masks.astype(np.int64))
    return {
        c: {"roc_auc": float(values["roc_auc"][i]), "pr_auc": float(values["pr_auc"][i]),
            "n_videos": int((cats == c).sum())}
        for i, c in enumerate(classes)
    }


def anomalous_videos_metrics(pool: FramePool, is_anomalous: np.ndarray) -> dict[str, float]:
    """Curve metrics over the frames of the anomalous videos only (``(V,)`` 0/1 mask).

    VADTree's "Abnormal" entry: localisation inside anomalous videos, normal videos left out.
    """
    mask = np.asarray(is_anomalous).astype(np.int64)
    return {k: float(v) for k, v in pool.metrics(mask).items()}
