"""Frames of many videos, sorted once, for metrics over any weighting of the videos.

:class:`FramePool` sorts the pooled scores of all videos once and keeps, per threshold group
``t`` and video ``v``, the number of positive and negative frames (two sparse ``(T, V)``
matrices). The curve of any video weighting ``w`` — a class subset (0/1), the anomalous videos
only, or a bootstrap resample (how many times each video was drawn) — is then
given by the per-group counts ``pos @ w`` and ``neg @ w``, without re-sorting or concatenating
anything. Many weightings are evaluated at once as the columns of a ``(V, B)`` matrix.

Runs of consecutive threshold groups that hold only negative frames are merged into one group
first. Under every weighting those groups leave recall unchanged, so they add no precision-recall
area and only a horizontal ROC segment, whose area the merged group keeps exactly; positive
frames are never merged (the precision-recall curve is not linear between them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from tasks.metrics.curves import check_inputs, curve_metrics, sort_groups

#: Upper bound on ``T * B`` elements of one dense block (about 32 MB of float64 per array).
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class FramePool:
    """Per-threshold, per-video frame counts of a pooled test set.

    Attributes:
        pos: ``(T, V)`` sparse CSR, positive frames of video ``v`` in threshold group ``t``
            (groups in descending score order, negative-only runs merged).
        neg: ``(T, V)`` sparse CSR, negative frames, same layout.
        num_frames: ``(V,)`` int64 frames per video.
    """

    pos: sparse.csr_matrix
    neg: sparse.csr_matrix
    num_frames: np.ndarray

    @property
    def n_videos(self) -> int:
        return int(self.num_frames.shape[0])

    @property
    def n_thresholds(self) -> int:
        return int(self.pos.shape[0])

    @classmethod
    def build(cls, labels: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> FramePool:
        """Pool per-video ``(n_v,)`` 0/1 labels and ``(n_v,)`` scores (same order, same lengths)."""
        if len(labels) != len(scores):
            raise ValueError(f"{len(labels)} label arrays but {len(scores)} score arrays")
        lengths = np.array([len(x) for x in labels], dtype=np.int64)
        if any(len(s) != n for s, n in zip(scores, lengths, strict=True)):
            raise ValueError("each video needs as many scores as labels")
        n_videos = len(labels)
        if n_videos == 0 or lengths.sum() == 0:
            empty = sparse.csr_matrix((1, n_videos), dtype=np.int64)
            return cls(empty, empty, lengths)
        y, s = check_inputs(np.concatenate(labels), np.concatenate(scores))
        video = np.repeat(np.arange(n_videos, dtype=np.int64), lengths)
        order, group = sort_groups(s)
        y, video = y[order], video[order]
        # A group stays its own row if it holds a positive frame; maximal runs of
        # negative-only groups collapse into one row.
        has_pos = np.zeros(int(group[-1]) + 1, dtype=bool)
        has_pos[group[y]] = True
        starts_row = has_pos | np.concatenate(([True], has_pos[:-1]))
        row_of_group = np.cumsum(starts_row) - 1
        row = row_of_group[group]
        n_rows = int(row_of_group[-1]) + 1
        shape = (n_rows, n_videos)
        ones = np.ones(1, dtype=np.int64)
        pos = sparse.csr_matrix(
            (np.broadcast_to(ones, (int(y.sum()),)), (row[y], video[y])), shape=shape)
        neg = sparse.csr_matrix(
            (np.broadcast_to(ones, (int((~y).sum()),)), (row[~y], video[~y])), shape=shape)
        pos.sum_duplicates()
        neg.sum_duplicates()
        return cls(pos, neg, lengths)

    def metrics(self, weights: np.ndarray, roc_only: bool = False) -> dict[str, np.ndarray]:
        """Curve metrics under video weights.

        Args:
            weights: ``(V,)`` or ``(V, B)`` non-negative integer video weights (0/1 masks,
                bootstrap draw counts), one column per weighting; kept integer so that every
                count is exact.

            roc_only: compute ``roc_auc`` only.

        Returns:
            ``{"roc_auc", "pr_auc", "average_precision"}`` (or ``{"roc_auc"}``) arrays of
            shape ``()`` or ``(B,)``.
        """
        w = np.asarray(weights)
        if w.ndim not in (1, 2) or w.shape[0] != self.n_videos:
            raise ValueError(f"weights {w.shape} do not match {self.n_videos} videos")
        if w.dtype.kind not in "iub":
            if not np.array_equal(w, np.round(w)):
                raise ValueError("video weights must be integers (masks or draw counts)")
            w = w.astype(np.int64)
        if (w < 0).any():
            raise ValueError("video weights must be non-negative")
        w = w.astype(np.int64, copy=False)
        if w.ndim == 1:
            out = self.metrics(w[:, None], roc_only)
            return {k: v[0] for k, v in out.items()}
        block = max(1, _BLOCK_ELEMENTS // max(self.n_thresholds, 1))
        parts: list[dict[str, np.ndarray]] = []
        for lo in range(0, w.shape[1], block):
            wb = w[:, lo:lo + block]
            dp = np.ascontiguousarray(np.asarray(self.pos @ wb).T)
            dn = np.ascontiguousarray(np.asarray(self.neg @ wb).T)
            parts.append(curve_metrics(dp, dn, roc_only))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
