"""VERA Steps 2-3 against hand computations."""

from __future__ import annotations

import math

import numpy as np

from methods.refine import gaussian_kernel, position_weights, retrieval_refine, smooth


def test_kernel_support_is_veras_asymmetric_one() -> None:
    k = gaussian_kernel(15, 10.0)
    x = np.linspace(-8, 7, 15)  # step 15/14, not 1
    ref = np.exp(-(x**2) / 200.0)
    assert np.allclose(k, ref / ref.sum())
    assert k[0] < k[-1]  # the -8 end weighs less than the +7 end: the documented asymmetry


def test_smooth_equals_numpy_same_for_long_inputs() -> None:
    s = np.random.default_rng(0).random(50)
    assert np.allclose(smooth(s), np.convolve(s, gaussian_kernel(), mode="same"))


def test_smooth_short_input_is_zero_padded_and_aligned() -> None:
    # 4 windows, kernel 15: out[i] = sum_j s[j] * k[i - j + 7] (zero padding), by hand
    s = np.array([1.0, 2.0, 3.0, 4.0])
    k = gaussian_kernel()
    expected = [sum(s[j] * k[i - j + 7] for j in range(4)) for i in range(4)]
    np.testing.assert_allclose(smooth(s), expected, rtol=1e-12)


def test_position_weights_ends() -> None:
    w = position_weights(101)
    assert w[50] == 1.0
    assert math.isclose(w[0], math.exp(-0.5))


def test_retrieval_by_hand() -> None:
    # 3 windows, top_n = int(0.15 * 3) = 0 -> all windows are kept (VERA's [:, -0:] slice)
    f = np.array([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    s = np.array([1.0, 0.0, 0.5])
    out = retrieval_refine(s, f, top_frac=0.15, temperature=10.0)
    sim0 = np.array([1.0, 0.0, math.sqrt(0.5)])
    w = np.exp(10 * sim0) / np.exp(10 * sim0).sum()
    assert math.isclose(out[0], float(w @ s), rel_tol=1e-12)


def test_retrieval_top_n() -> None:
    # 20 windows: top_n = 3; window 0's neighbours are itself and its two most similar ones
    rng = np.random.default_rng(1)
    f = rng.normal(size=(20, 5))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    s = rng.random(20)
    out = retrieval_refine(s, f)
    sim = f @ f.T
    top = np.argsort(-sim[0])[:3]
    w = np.exp(10 * sim[0, top])
    assert math.isclose(out[0], float((w / w.sum()) @ s[top]), rel_tol=1e-12)
