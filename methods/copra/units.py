"""Where COPRA's adapters come from: the adaptation units of a video and their conditioning
frames (COPRA §3 "Flexible Sampling for Temporal Adaptation", Table 6).

Granularities, for a video of ``N`` frames and the shared window grid (:mod:`tasks.windows`):

* ``"segment"``: one unit per window (10-second segment); the conditioning frames are the
  window's own sampled frames, so the generator sees exactly what the VLM is asked about;
* ``"chunk"``: non-overlapping chunks of ``L = round(chunk_seconds * fps)`` frames,
  ``[k L, min((k + 1) L, N))``; a window belongs to the chunk holding its centre frame;
* ``"video"``: one unit, ``[0, N)``.

A chunk's or video's conditioning frames are ``n`` frames drawn uniformly with stride
``length / n`` from its first frame (:func:`tasks.windows.sample_window`, ``"arange"``), the same
rule training uses on whole videos. Frames are 0-based, ``stop`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.windows import WindowGrid, sample_window

GRANULARITIES = ("segment", "chunk", "video")


@dataclass(frozen=True)
class Units:
    """The units of one video.

    Attributes:
        window_unit: ``(W,)`` the unit of each window.
        spans: ``[(start, stop)]`` per unit (``stop`` exclusive); for segments, the range of
            the window's sampled frames.
        conditioning: per unit, the 0-based frames the generator is conditioned on; ``None``
            for segments (the window's own frames).
    """

    window_unit: np.ndarray
    spans: list[tuple[int, int]]
    conditioning: list[np.ndarray | None]

    def __len__(self) -> int:
        return len(self.spans)

    def extra_indices(self) -> np.ndarray:
        """Every conditioning frame of the chunks / video (decoded along with the windows'
        frames; duplicates of window frames are harmless)."""
        parts = [c for c in self.conditioning if c is not None]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def chunk_frames(chunk_seconds: float, fps: float) -> int:
    """Frames per chunk (at least 1)."""
    if chunk_seconds <= 0 or fps <= 0:
        raise ValueError(f"chunk_seconds and fps must be positive ({chunk_seconds}, {fps})")
    return max(1, round(chunk_seconds * fps))


def plan_units(grid: WindowGrid, num_frames: int, fps: float, granularity: str,
               chunk_seconds: float = 120.0, n: int = 8) -> Units:
    """The units of a ``num_frames``-frame video (see the module docstring)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if granularity == "segment":
        spans = [(int(ix.min()), int(ix.max()) + 1) for ix in grid.indices]
        return Units(np.arange(len(grid), dtype=np.int64), spans, [None] * len(spans))
    length = num_frames if granularity == "video" else chunk_frames(chunk_seconds, fps)
    starts = list(range(0, num_frames, length))
    spans = [(s, min(s + length, num_frames)) for s in starts]
    window_unit = np.minimum(np.asarray(grid.centres, dtype=np.int64) // length, len(spans) - 1)
    cond: list[np.ndarray | None] = [sample_window(s, e, n, "arange") for s, e in spans]
    return Units(window_unit, spans, cond)
