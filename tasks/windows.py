"""The LAVAD/VERA sliding-window protocol: the one window grid of the project.

Window centres are frames ``0, stride, 2*stride, ...`` below ``num_frames`` (stride 16). Each
window spans ``window_seconds * fps`` frames around its centre (10 s at the dataset's fps
constant: 300 frames for UCF-Crime at 30, 240 for XD-Violence at 24): from
``centre - F // 2`` (inclusive) to ``centre + F // 2`` (exclusive), clipped to
``[0, num_frames)``. From each window ``frames_per_window`` frame indices are drawn:

* ``"linspace"`` (LAVAD): ``linspace(start, end - 1, N)`` cast to int; all frames if the window
  holds at most N.
* ``"arange"`` (VERA Step 1): ``arange(start, end, (end - start) / N)`` cast to int.
* ``"mid"`` (Holmes-VAU's uniform sampling): the middle frame of each of N equal segments,
  ``start + int((i + 0.5) * (end - start) / N)``; all frames if the window holds at most N.

The same function samples whole videos and clips for the language-side tasks
(:func:`sample_window` over ``[0, num_frames)`` or a sample's span).

Window scores go back to frames by repeat-and-truncate: each centre's score is repeated
``stride`` times and the vector is cut to ``num_frames`` (LAVAD, VERA Step 3c).

All indices are 0-based; ``WindowGrid.ends`` are exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Sampler = Literal["linspace", "arange", "mid"]
SAMPLERS: tuple[str, ...] = ("linspace", "arange", "mid")


@dataclass(frozen=True)
class WindowSpec:
    """Protocol parameters of the window grid."""

    stride: int = 16
    window_seconds: float = 10.0
    frames_per_window: int = 10
    sampler: Sampler = "linspace"

    def window_frames(self, fps: float) -> int:
        """Window length F in frames: ``int(window_seconds * fps)``."""
        return int(self.window_seconds * fps)


@dataclass(frozen=True)
class WindowGrid:
    """Windows of one video.

    Attributes:
        centres: ``(W,)`` int64 centre frames.
        starts: ``(W,)`` int64 first frame of each window (inclusive).
        ends: ``(W,)`` int64 end of each window (exclusive).
        indices: ``W`` arrays of sampled frame indices, each sorted, within ``[start, end)``.
    """

    num_frames: int
    stride: int
    centres: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    indices: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.centres)

    def all_indices(self) -> np.ndarray:
        """Sorted unique frame indices needed by all windows (what one decode must produce)."""
        if not self.indices:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(self.indices))

    def to_frames(self, window_scores: np.ndarray) -> np.ndarray:
        """Repeat each window score ``stride`` times, truncate to ``num_frames`` -> float64."""
        return window_scores_to_frames(window_scores, self.num_frames, self.stride)


def sample_window(start: int, end: int, n: int, sampler: Sampler = "linspace") -> np.ndarray:
    """Frame indices drawn from ``[start, end)`` (end exclusive), ``int64``."""
    length = end - start
    if length <= 0:
        raise ValueError(f"empty window [{start}, {end})")
    if sampler == "linspace":
        if length <= n:
            return np.arange(start, end, dtype=np.int64)
        return np.linspace(start, end - 1, n).astype(np.int64)
    if sampler == "arange":
        return np.arange(start, end, length / n).astype(np.int64)[:n]
    if sampler == "mid":
        if length <= n:
            return np.arange(start, end, dtype=np.int64)
        return start + ((np.arange(n) + 0.5) * length / n).astype(np.int64)
    raise ValueError(f"unknown sampler {sampler!r}")


def make_grid(num_frames: int, fps: float, spec: WindowSpec | None = None) -> WindowGrid:
    """Build the window grid of a ``num_frames``-frame video under the dataset's ``fps``."""
    spec = spec or WindowSpec()
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    half = spec.window_frames(fps) // 2
    centres = np.arange(0, num_frames, spec.stride, dtype=np.int64)
    starts = np.maximum(centres - half, 0)
    ends = np.minimum(centres + half, num_frames)
    ends = np.maximum(ends, starts + 1)  # a zero-length window (tiny fps) keeps its centre frame
    indices = tuple(
        sample_window(int(s), int(e), spec.frames_per_window, spec.sampler)
        for s, e in zip(starts, ends, strict=True)
    )
    return WindowGrid(num_frames, spec.stride, centres, starts, ends, indices)


def window_scores_to_frames(window_scores: np.ndarray, num_frames: int, stride: int) -> np.ndarray:
    """Repeat-and-truncate: ``(W,)`` window scores -> ``(num_frames,)`` float64 frame scores."""
    scores = np.asarray(window_scores, dtype=np.float64)
    expected = -(-num_frames // stride)
    if scores.shape != (expected,):
        raise ValueError(
            f"expected {expected} window scores for {num_frames} frames at stride {stride}, "
            f"got shape {scores.shape}"
        )
    return np.repeat(scores, stride)[:num_frames]
