"""Temporal trimming for AVA-GRPO's anomaly verification (Vad-R1 Algorithm 1).

Everything works on the frame indices of the *sampled* video: ``indices`` ``(T,)`` are the
0-based source frames the model was shown (in increasing order) out of a video of
``num_frames`` frames; a trim returns the subset to show again, in the same order.

* :func:`trim_interval`: an "abnormal" answer's ``<when>[a, b]</when>`` is a fraction of the
  video's length (Vad-R1's convention: ``[start / total, end / total]``); the frames whose
  position ``f / num_frames`` lies in ``[a, b]`` (both ends inclusive) are removed.
* :func:`trim_head_or_tail`: for a "normal" answer the paper "randomly discard[s] either the
  beginning or the ending segment"; how much is not given: here the first or the last
  ``ceil(fraction * T)`` sampled frames (``fraction`` a setting, 0.25 by default), side drawn
  from ``rng``.

A trim that would leave no frame returns an empty array; the caller then skips the re-query
(verification reward 0).
"""

from __future__ import annotations

import math

import numpy as np


def trim_interval(indices: np.ndarray, num_frames: int, when: tuple[float, float]
                  ) -> np.ndarray:
    """``indices`` without the frames inside the normalised interval ``when`` (swapped ends
    are reordered)."""
    idx = np.asarray(indices, dtype=np.int64)
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    lo, hi = sorted((float(when[0]), float(when[1])))
    pos = idx / num_frames
    return idx[(pos < lo) | (pos > hi)]


def trim_head_or_tail(indices: np.ndarray, rng: np.random.Generator, fraction: float = 0.25
                      ) -> tuple[np.ndarray, str]:
    """``(kept indices, "head" | "tail")``: the first or last ``ceil(fraction * T)`` sampled
    frames removed."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    idx = np.asarray(indices, dtype=np.int64)
    k = math.ceil(fraction * len(idx))
    side = "head" if rng.random() < 0.5 else "tail"
    return (idx[k:] if side == "head" else idx[: len(idx) - k]), side
