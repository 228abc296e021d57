"""Exponential Majority Smoothing (EMS): AnomalyRuler's perception smoothing, in pure numpy.

HyCoVAD (§3.4) turns the LLM validator's binary per-frame decisions into anomaly scores with
the EMS post-processing of AnomalyRuler (``../shared/specs/PROTOCOLS.md`` §5). The input is
**one video's** decisions, in time order (one entry per processed frame, 0 = normal,
1 = anomaly); videos are smoothed independently. The steps, for decisions ``d`` of length N:

1. ``ema = ewm_mean(d, alpha=0.33)`` (pandas ``ewm(alpha=0.33, adjust=True).mean()``);
2. ``threshold = mean(ema)``;
3. ``s_pred = majority_smooth(ema > threshold, window)`` (``window=1``, AnomalyRuler's setting,
   is the identity: ``s_pred = ema > threshold``);
4. if ``threshold == 0`` it becomes ``1e-7`` (AnomalyRuler applies this *after* step 3; since
   ``ema >= 0``, ``threshold == 0`` means ``ema`` is all zeros and ``ema > 1e-7`` would give the
   same all-zero ``s_pred``, so the order does not matter);
5. ``scores = ewm_mean(s_pred, alpha=threshold)``: float64 in [0, 1].

Consequence worth knowing: a constant video (all 0 or all 1) gets all-zero scores, because no
frame's ``ema`` is strictly above the mean.

``ewm_mean`` reproduces pandas' recursion (including its skip when the running mean already
equals the new value), so the comparisons against ``threshold`` in step 3 see the same floats
as AnomalyRuler's pandas code, not just mathematically equal ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: AnomalyRuler's first EMA smoothing factor.
EMA_ALPHA = 0.33
#: Added to a zero threshold before it is used as the second EMA's alpha.
ZERO_THRESHOLD_EPS = 1e-7


def ewm_mean(x: np.ndarray, alpha: float) -> np.ndarray:
    """Adjusted exponentially weighted mean, ``(N,)`` -> ``(N,)`` float64.

    ``y_t = sum_{i<=t} (1-alpha)^(t-i) x_i / sum_{i<=t} (1-alpha)^(t-i)``, i.e. pandas
    ``Series(x).ewm(alpha=alpha, adjust=True).mean()``. Computed with pandas' recursion
    (running weight ``w_t = (1-alpha) w_{t-1} + 1``; ``y_t = ((w_t - 1) y_{t-1} + x_t) / w_t``,
    left unchanged when ``y_{t-1} == x_t``) and pandas' ``alpha -> com -> alpha`` round trip,
    so results are bit-identical to pandas (e.g. a constant input gives exactly that
    constant), which keeps EMS's ``ema > mean(ema)`` comparisons identical too.

    ``alpha`` must be in (0, 1]; ``x`` must be 1-D and free of NaN (pandas' NaN handling is not
    reproduced: resolve missing decisions before smoothing). Empty input -> empty output.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D sequence, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("ewm_mean does not accept NaN values")
    out = np.empty_like(values)
    if values.size == 0:
        return out
    # pandas goes through the centre of mass: com = (1 - alpha) / alpha, alpha' = 1 / (1 + com).
    # alpha' can differ from alpha in the last bit; using it keeps the results bit-identical.
    com = (1.0 - alpha) / alpha
    decay = 1.0 - 1.0 / (1.0 + com)
    mean = float(values[0])
    old_wt = 1.0
    out[0] = mean
    for i in range(1, values.size):
        cur = float(values[i])
        old_wt *= decay
        if mean != cur:
            mean = (old_wt * mean + cur) / (old_wt + 1.0)
        old_wt += 1.0
        out[i] = mean
    return out


def effective_window(window: int) -> int:
    """The window AnomalyRuler actually uses: even sizes grow by one (``k -> k + 1``)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return window + 1 if window % 2 == 0 else window


def majority_smooth(above: np.ndarray, window: int) -> np.ndarray:
    """AnomalyRuler's majority vote, ``(N,)`` bool/0-1 -> ``(N,)`` int64 in {0, 1}.

    Precise rule (AnomalyRuler's ``ema_majority_smooth`` applied to ``above = ema > threshold``):

    * ``k = effective_window(window)``: an even window is enlarged to ``k + 1`` (so 2 behaves as
      3, 10 as 11); ``p = k // 2``; ``window=1`` is the identity.
    * The sequence is edge-padded by ``p`` on both sides: ``pad[j] = above[clip(j - p, 0, N-1)]``
      for ``j`` in ``[0, N + 2p)``.
    * Interior frames (``p <= i < N - p``) vote over ``pad[i : i + k]``, i.e. the centred
      window ``above[i-p .. i+p]``.
    * Edge frames (``i < p`` or ``i >= N - p``) vote over ``pad[max(0, i-p) : i + 1]``: "the
      current position and the ``p`` previous ones" **in padded coordinates**, as the spec and
      AnomalyRuler's code have it. In original coordinates that is ``above[i-2p .. i-p]``
      (indices below 0 read ``above[0]``): the first ``p`` frames all copy ``above[0]`` and the
      last ``p`` frames vote over a window lagging ``p`` frames behind them.
    * Output 1 iff the count of ``True`` in the window is strictly greater than the count of
      ``False`` (ties -> 0).
    """
    flags = np.asarray(above).astype(bool)
    if flags.ndim != 1:
        raise ValueError(f"expected a 1-D sequence, got shape {flags.shape}")
    k = effective_window(window)
    n = flags.size
    if k == 1 or n == 0:
        return flags.astype(np.int64)
    p = k // 2
    padded = np.pad(flags.astype(np.int64), p, mode="edge")
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        edge = i < p or i >= n - p
        votes = padded[max(0, i - p): i + 1] if edge else padded[i: i + k]
        ones = int(votes.sum())
        out[i] = 1 if ones > votes.size - ones else 0
    return out


@dataclass(frozen=True)
class EMSResult:
    """All intermediate quantities of EMS for one video (each array ``(N,)``).

    ``ema``: first EMA of the decisions; ``threshold``: ``mean(ema)`` (``1e-7`` when that is 0),
    also the second EMA's alpha; ``predictions``: majority-smoothed ``ema > threshold`` (int64
    0/1); ``scores``: second EMA of ``predictions`` (float64, the anomaly scores).
    """

    ema: np.ndarray
    threshold: float
    predictions: np.ndarray
    scores: np.ndarray


def ems(decisions: np.ndarray, ema_alpha: float = EMA_ALPHA, window: int = 1) -> EMSResult:
    """Run EMS on one video's binary decisions ``(N,)`` (time order); see the module docstring.

    An empty input gives empty arrays and ``threshold = 1e-7``.
    """
    d = np.asarray(decisions, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of decisions, got shape {d.shape}")
    if d.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return EMSResult(empty, ZERO_THRESHOLD_EPS, np.zeros(0, dtype=np.int64), empty)
    ema = ewm_mean(d, ema_alpha)
    threshold = float(ema.mean())
    predictions = majority_smooth(ema > threshold, window)
    if threshold == 0.0:
        threshold += ZERO_THRESHOLD_EPS
    scores = ewm_mean(predictions, alpha=threshold)
    return EMSResult(ema=ema, threshold=threshold, predictions=predictions, scores=scores)


def ems_scores(decisions: np.ndarray, ema_alpha: float = EMA_ALPHA, window: int = 1) -> np.ndarray:
    """EMS anomaly scores ``(N,)`` float64 in [0, 1] for one video's 0/1 decisions (time order)."""
    return ems(decisions, ema_alpha, window).scores


def ems_predictions(
    decisions: np.ndarray, ema_alpha: float = EMA_ALPHA, window: int = 1
) -> np.ndarray:
    """EMS binary predictions ``(N,)`` int64 0/1 (step 3's ``s_pred``) for one video."""
    return ems(decisions, ema_alpha, window).predictions
