"""VERA's post-processing of window scores (Steps 2 and 3), as pure functions.

Shapes: ``scores`` is ``(W,)`` float64, one per window of the LAVAD/VERA grid (see
:mod:`tasks.windows`); ``features`` is ``(W, D)``, L2-normalised rows. Conventions follow the
VERA reference code (``../shared/specs/PROTOCOLS.md`` §2):

* Step 2, retrieval: cosine similarities between all windows of the same video; each window
  keeps its ``top_n = int(frac * W)`` most similar windows (itself included; when that is 0,
  all windows, as VERA's ``[:, -0:]`` slice does); refined score = ``softmax(temperature *
  sim) . scores`` over the kept windows.
* Step 3a, smoothing: ``np.convolve(scores, kernel, "same")`` with a normalised Gaussian of
  size 15 and sigma 10 whose support is ``linspace((-size) // 2, size // 2, size)`` (VERA's
  operator precedence gives ``[-8, 7]``, slightly asymmetric; ``vera_support=False`` uses the
  symmetric ``[-7, 7]``). Edges are zero-padded.
* Step 3d, position weighting of frame scores: ``exp(-0.5 * ((t - c) / c) ** 2)`` with
  ``c = L // 2`` (a Gaussian centred mid-video whose sigma is half the length).
"""

from __future__ import annotations

import numpy as np


def retrieval_refine(
    scores: np.ndarray, features: np.ndarray, top_frac: float = 0.15, temperature: float = 10.0,
    all_below: int = 0,
) -> np.ndarray:
    """Step 2: ``(W,)`` scores, ``(W, D)`` normalised features -> ``(W,)`` refined scores.

    ``all_below``: videos with at most this many windows keep all of them (VERA's XD-Violence
    scripts: 10 for AUC, 4 for AP; its UCF-Crime script: 0). Among equally similar windows the
    stable sort keeps the later ones; VERA's default sort may pick others (ties only).
    """
    scores = np.asarray(scores, dtype=np.float64)
    feats = np.asarray(features, dtype=np.float64)
    n = len(scores)
    if feats.shape[0] != n:
        raise ValueError(f"{n} scores but {feats.shape[0]} feature rows")
    sim = feats @ feats.T
    top_n = int(top_frac * n)
    if top_n <= 0 or n <= all_below:
        top_n = n
    # indices of the top_n most similar windows per row (order within the set is irrelevant)
    idx = np.argsort(sim, axis=1, kind="stable")[:, n - top_n:]
    kept = np.take_along_axis(sim, idx, axis=1) * temperature
    kept -= kept.max(axis=1, keepdims=True)
    w = np.exp(kept)
    w /= w.sum(axis=1, keepdims=True)
    return np.asarray((w * scores[idx]).sum(axis=1), dtype=np.float64)


def gaussian_kernel(size: int = 15, sigma: float = 10.0, vera_support: bool = True) -> np.ndarray:
    """Normalised Gaussian kernel ``(size,)``; see module docstring for the support."""
    lo = (-size) // 2 if vera_support else -(size // 2)
    x = np.linspace(lo, size // 2, size)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return np.asarray(k / k.sum(), dtype=np.float64)


def smooth(scores: np.ndarray, size: int = 15, sigma: float = 10.0,
           vera_support: bool = True) -> np.ndarray:
    """Step 3a: ``(W,)`` -> ``(W,)`` Gaussian-smoothed, zero-padded ``same`` convolution.

    Computed as ``full[(size - 1) // 2 : (size - 1) // 2 + W]``, which is numpy's ``same`` for
    ``W >= size`` and keeps ``W`` values aligned with the windows when a video has fewer windows
    than the kernel (numpy's ``same`` would return ``size`` values then).
    """
    s = np.asarray(scores, dtype=np.float64)
    full = np.convolve(s, gaussian_kernel(size, sigma, vera_support), mode="full")
    start = (size - 1) // 2
    return np.asarray(full[start:start + len(s)], dtype=np.float64)


def position_weights(num_frames: int) -> np.ndarray:
    """Step 3d weights ``(num_frames,)``: Gaussian centred at ``L // 2`` with sigma ``L // 2``."""
    c = num_frames // 2
    if c == 0:
        return np.ones(num_frames, dtype=np.float64)
    t = np.arange(num_frames, dtype=np.float64)
    return np.exp(-0.5 * ((t - c) / c) ** 2)
