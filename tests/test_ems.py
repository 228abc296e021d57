"""EMS (methods/ems.py) against pandas and hand-worked values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from methods.ems import (
    effective_window,
    ems,
    ems_predictions,
    ems_scores,
    ewm_mean,
    majority_smooth,
)


def _pandas_ewm(x: np.ndarray, alpha: float) -> np.ndarray:
    series = pd.Series(np.asarray(x, dtype=np.float64))
    return series.ewm(alpha=alpha, adjust=True).mean().to_numpy()


def _hand_ewm(x: list[float], alpha: float) -> list[float]:
    """The defining formula, written out: weights (1-alpha)^(t-i) over the prefix."""
    b = 1.0 - alpha
    out = []
    for t in range(len(x)):
        num = sum(b ** (t - i) * x[i] for i in range(t + 1))
        den = sum(b ** (t - i) for i in range(t + 1))
        out.append(num / den)
    return out


# ----------------------------------------------------------------------------- ewm_mean


@pytest.mark.parametrize("seed", range(6))
def test_ewm_mean_matches_pandas_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 200))
        alpha = float(rng.uniform(1e-4, 1.0))
        x = rng.integers(0, 2, n).astype(float) if seed % 2 else rng.normal(size=n)
        np.testing.assert_array_equal(ewm_mean(x, alpha), _pandas_ewm(x, alpha))


@pytest.mark.parametrize("alpha", [0.33, 1e-7, 1.0, 0.5])
def test_ewm_mean_edge_alphas_match_pandas(alpha: float) -> None:
    x = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], dtype=float)
    np.testing.assert_array_equal(ewm_mean(x, alpha), _pandas_ewm(x, alpha))


def test_ewm_mean_hand_formula_and_constant_input() -> None:
    # x = [1, 0, 1], alpha = 0.5 (b = 0.5): y0 = 1; y1 = (0.5*1 + 0)/(1.5) = 1/3;
    # y2 = (0.25*1 + 0.5*0 + 1)/(1.75) = 1.25/1.75 = 5/7
    np.testing.assert_allclose(ewm_mean(np.array([1.0, 0.0, 1.0]), 0.5), [1.0, 1 / 3, 5 / 7])
    # a constant sequence stays exactly constant (pandas' skip-on-equal)
    np.testing.assert_array_equal(ewm_mean(np.ones(50), 0.33), np.ones(50))
    assert ewm_mean(np.zeros(0), 0.3).shape == (0,)


def test_ewm_mean_validation() -> None:
    with pytest.raises(ValueError):
        ewm_mean(np.ones(3), 0.0)
    with pytest.raises(ValueError):
        ewm_mean(np.ones(3), 1.5)
    with pytest.raises(ValueError):
        ewm_mean(np.array([0.0, np.nan]), 0.3)
    with pytest.raises(ValueError):
        ewm_mean(np.ones((2, 2)), 0.3)


# ----------------------------------------------------------------------- majority_smooth


def test_majority_smooth_window_one_is_identity() -> None:
    above = np.array([0, 1, 1, 0, 1, 0], dtype=bool)
    np.testing.assert_array_equal(majority_smooth(above, 1), [0, 1, 1, 0, 1, 0])


def test_majority_smooth_k3_hand_case() -> None:
    # above = [0, 1, 1, 0, 0, 1, 1], N = 7, k = 3, p = 1
    # padded (edge, p=1) = [0, 0, 1, 1, 0, 0, 1, 1, 1]   (pad[j] = above[clip(j-1)])
    # i=0 (edge, i < p):    pad[0:1] = [0]          -> 0 ones vs 1 zero  -> 0
    # i=1 (interior):       pad[1:4] = [0, 1, 1]    -> 2 > 1             -> 1
    # i=2:                  pad[2:5] = [1, 1, 0]    -> 1
    # i=3:                  pad[3:6] = [1, 0, 0]    -> 0
    # i=4:                  pad[4:7] = [0, 0, 1]    -> 0
    # i=5:                  pad[5:8] = [0, 1, 1]    -> 1
    # i=6 (edge, i >= N-p): pad[5:7] = [0, 1]       -> tie               -> 0
    #   (that is above[4..5], one frame behind; a vote over above[5..6] = [1, 1] would give 1)
    above = np.array([0, 1, 1, 0, 0, 1, 1], dtype=bool)
    np.testing.assert_array_equal(majority_smooth(above, 3), [0, 1, 1, 0, 0, 1, 0])


def test_majority_smooth_k5_hand_case() -> None:
    # above = [1, 0, 0, 0, 1, 1, 0, 1], N = 8, k = 5, p = 2; edges: i < 2 or i >= 6
    # padded = [1, 1, | 1, 0, 0, 0, 1, 1, 0, 1, | 1, 1]
    # i=0: pad[0:1] = [1]                 -> 1
    # i=1: pad[0:2] = [1, 1]              -> 1
    # i=2: pad[2:7] = above[0..4] = [1,0,0,0,1] -> 2 vs 3 -> 0
    # i=3: above[1..5] = [0,0,0,1,1]      -> 0
    # i=4: above[2..6] = [0,0,1,1,0]      -> 0
    # i=5: above[3..7] = [0,1,1,0,1]      -> 1
    # i=6: pad[4:7] = above[2..4] = [0,0,1]  -> 0
    # i=7: pad[5:8] = above[3..5] = [0,1,1]  -> 1
    above = np.array([1, 0, 0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(majority_smooth(above, 5), [1, 1, 0, 0, 0, 1, 0, 1])


def test_majority_smooth_even_window_grows_by_one() -> None:
    assert effective_window(2) == 3 and effective_window(10) == 11 and effective_window(1) == 1
    rng = np.random.default_rng(3)
    above = rng.integers(0, 2, 30).astype(bool)
    np.testing.assert_array_equal(majority_smooth(above, 2), majority_smooth(above, 3))
    np.testing.assert_array_equal(majority_smooth(above, 4), majority_smooth(above, 5))
    with pytest.raises(ValueError):
        majority_smooth(above, 0)


def test_majority_smooth_short_sequences() -> None:
    # N = 2 < k = 5: every frame is an edge frame; pad = [a0, a0, a0, a1, a1, a1]
    # i=0: pad[0:1] = [1] -> 1;  i=1: pad[0:2] = [1, 1] -> 1
    np.testing.assert_array_equal(majority_smooth(np.array([1, 0]), 5), [1, 1])
    assert majority_smooth(np.zeros(0), 3).shape == (0,)


# ------------------------------------------------------------------------------- EMS


def test_ems_hand_worked_sequence() -> None:
    # decisions d = [0, 0, 1, 1, 0, 0], alpha = 0.33, b = 0.67 (b^2 = 0.4489, b^3 = 0.300763)
    # ema_t = sum_i b^(t-i) d_i / sum_i b^(t-i):
    #   ema0 = 0, ema1 = 0
    #   ema2 = 1 / (1 + .67 + .4489)                            = 1 / 2.1189       = 0.471943
    #   ema3 = (.67 + 1) / 2.419663                             = 1.67 / 2.419663  = 0.690179
    #   ema4 = (.4489 + .67) / (2.419663 + .20151121)           = 1.1189 / 2.621174 = 0.426870
    #   ema5 = (.300763 + .4489) / (2.621174 + .13501251)       = .749663 / 2.756187 = 0.271993
    # threshold = mean(ema) = (0.471943 + 0.690179 + 0.426870 + 0.271993) / 6 = 0.310164
    # s_pred (window 1) = ema > threshold = [0, 0, 1, 1, 1, 0]   (0.271993 < 0.310164)
    # scores = EWM(s_pred, alpha = 0.310164), b' = 0.689836:
    #   y0 = y1 = 0
    #   y2 = 1 / (1 + b' + b'^2)                         = 1 / 2.165710       = 0.461742
    #   y3 = (b' + 1) / (1 + b' + b'^2 + b'^3)           = 1.689836 / 2.493987 = 0.677565
    #   y4 = (b'^2 + b' + 1) / (sum_{j<=4} b'^j)         = 0.796088
    #   y5 = (b'^3 + b'^2 + b') / (sum_{j<=5} b'^j)      = 0.519347
    d = np.array([0, 0, 1, 1, 0, 0])
    res = ems(d)
    np.testing.assert_allclose(res.ema, [0, 0, 0.471943, 0.690179, 0.426870, 0.271993], atol=1e-6)
    assert res.threshold == pytest.approx(0.310164, abs=1e-6)
    np.testing.assert_array_equal(res.predictions, [0, 0, 1, 1, 1, 0])
    np.testing.assert_allclose(
        res.scores, [0, 0, 0.461742, 0.677565, 0.796088, 0.519347], atol=1e-6
    )
    # the same numbers from the written-out formula (not from the module)
    ema_hand = _hand_ewm([0, 0, 1, 1, 0, 0], 0.33)
    thr = sum(ema_hand) / 6
    s = [1.0 if e > thr else 0.0 for e in ema_hand]
    np.testing.assert_allclose(ems_scores(d), _hand_ewm(s, thr), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ems_predictions(d), s)
    assert ems_scores(d).dtype == np.float64


@pytest.mark.parametrize("seed", range(5))
def test_ems_matches_anomalyruler_pandas_pipeline(seed: int) -> None:
    """Window 1 (AnomalyRuler's setting) against the pandas pipeline written out here."""
    rng = np.random.default_rng(seed)
    d = (rng.random(int(rng.integers(5, 400))) < rng.uniform(0.05, 0.6)).astype(int)
    ema = pd.Series(d).ewm(alpha=0.33, adjust=True).mean()
    thr = ema.mean()
    s_pred = (ema > thr).astype(int).to_numpy()
    if thr == 0:
        thr += 1e-7
    expected = pd.Series(s_pred).ewm(alpha=thr, adjust=True).mean().to_numpy()
    np.testing.assert_array_equal(ems_predictions(d), s_pred)
    np.testing.assert_allclose(ems_scores(d), expected, rtol=0, atol=1e-15)


def test_ems_all_zeros_uses_epsilon_threshold() -> None:
    # ema = 0 everywhere -> mean 0 -> threshold 1e-7; nothing above -> scores all 0
    res = ems(np.zeros(8))
    assert res.threshold == 1e-7
    np.testing.assert_array_equal(res.predictions, np.zeros(8))
    np.testing.assert_array_equal(res.scores, np.zeros(8))


def test_ems_all_ones_and_length_one() -> None:
    # ema = 1 everywhere, threshold 1, and 1 > 1 is false: a constant video scores 0
    np.testing.assert_array_equal(ems_scores(np.ones(5)), np.zeros(5))
    # length 1: ema = [d0], threshold = d0, never strictly above
    np.testing.assert_array_equal(ems_scores(np.array([1])), [0.0])
    res = ems(np.array([0]))
    assert res.threshold == 1e-7 and res.scores.tolist() == [0.0]
    assert ems_scores(np.zeros(0)).shape == (0,)


def test_ems_window3_hand_case() -> None:
    # d = [0, 0, 1, 0, 0, 0, 1, 1, 1, 0]; formula values (alpha .33):
    # ema = [0, 0, .4719, .2769, .1713, .1091, .4221, .6209, .7495, .4976], mean = .33192
    # above = [0, 0, 1, 0, 0, 0, 1, 1, 1, 1]   (window 1 keeps the isolated spike at t=2)
    # k = 3, p = 1, pad = [0, | 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, | 1]
    #   i=0 edge [0] -> 0; i=1 [0,0,1] -> 0; i=2 [0,1,0] -> 0; i=3 [1,0,0] -> 0; i=4 [0,0,0] -> 0
    #   i=5 [0,0,1] -> 0; i=6 [0,1,1] -> 1; i=7 [1,1,1] -> 1; i=8 [1,1,1] -> 1
    #   i=9 edge pad[8:10] = above[7..8] = [1,1] -> 1
    d = np.array([0, 0, 1, 0, 0, 0, 1, 1, 1, 0])
    assert ems_predictions(d).tolist() == [0, 0, 1, 0, 0, 0, 1, 1, 1, 1]
    res = ems(d, window=3)
    assert res.predictions.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert res.threshold == pytest.approx(0.33192, abs=1e-5)
    s = [0.0] * 6 + [1.0] * 4
    np.testing.assert_allclose(res.scores, _hand_ewm(s, res.threshold), rtol=1e-12)
