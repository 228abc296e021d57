"""Frame metrics against scikit-learn: random, tied and all-tied data; weighted pools; bootstrap."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from tasks.metrics.bootstrap import BootstrapEntry, BootstrapSpec, bootstrap_ci, draw_counts
from tasks.metrics.curves import curve_metrics
from tasks.metrics.frame import (
    FramePool,
    anomalous_videos_metrics,
    average_precision,
    per_class_metrics,
    pooled_metrics,
    pr_auc,
    roc_auc,
    video_max_scores,
    video_roc_auc,
)


def sk(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    return {"roc_auc": auc(fpr, tpr), "pr_auc": auc(recall, precision),
            "average_precision": average_precision_score(labels, scores)}


def random_case(rng: np.random.Generator, n: int, decimals: int | None) -> tuple:
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    s = rng.random(n) + 0.3 * y
    if decimals is not None:
        s = np.round(s, decimals)  # many ties
    return y, s


@pytest.mark.parametrize("decimals", [None, 2, 1, 0])
@pytest.mark.parametrize("seed", range(4))
def test_equal_to_sklearn_on_random_and_tied_data(seed: int, decimals: int | None) -> None:
    rng = np.random.default_rng(seed)
    y, s = random_case(rng, int(rng.integers(2, 5000)), decimals)
    ours, ref = pooled_metrics(y, s), sk(y, s)
    for k in ref:
        assert ours[k] == pytest.approx(ref[k], abs=1e-12), k
    assert roc_auc(y, s) == ours["roc_auc"]
    assert pr_auc(y, s) == ours["pr_auc"]
    assert average_precision(y, s) == ours["average_precision"]


def test_all_tied_scores() -> None:
    y = np.array([0, 1, 1, 0, 0, 1, 0])
    s = np.full(7, 0.3)
    ours, ref = pooled_metrics(y, s), sk(y, s)
    assert ours["roc_auc"] == pytest.approx(0.5, abs=1e-12)
    for k in ref:
        assert ours[k] == pytest.approx(ref[k], abs=1e-12)


def test_hand_computed_small_case() -> None:
    # scores 0.9(+) 0.8(-) 0.7(+) 0.1(-): ROC AUC 3/4; PR points (.5,1) (.5,.5) (1,2/3)
    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    m = pooled_metrics(y, s)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m["pr_auc"] == pytest.approx(0.5 * (1 + 1) / 2 + 0.5 * (0.5 + 2 / 3) / 2)


def test_undefined_cases_are_nan() -> None:
    m = pooled_metrics(np.zeros(5), np.arange(5.0))
    assert all(np.isnan(v) for v in m.values())
    m = pooled_metrics(np.ones(5), np.arange(5.0))
    assert np.isnan(m["roc_auc"]) and m["pr_auc"] == pytest.approx(1.0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        roc_auc(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="0/1"):
        roc_auc(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="equal length"):
        roc_auc(np.array([0, 1, 1]), np.array([0.1, 0.2]))


def split_videos(rng: np.random.Generator, y: np.ndarray, s: np.ndarray, v: int) -> tuple:
    cuts = np.sort(rng.choice(np.arange(1, len(y)), v - 1, replace=False))
    return np.split(y, cuts), np.split(s, cuts)


@pytest.mark.parametrize("seed", range(6))
def test_pool_weights_equal_sklearn_on_repeated_videos(seed: int) -> None:
    """A weighted pool == sklearn on the concatenation with each video repeated w times."""
    rng = np.random.default_rng(seed)
    y, s = random_case(rng, 3000, [None, 1, 2][seed % 3])
    labels, scores = split_videos(rng, y, s, 12)
    pool = FramePool.build(labels, scores)
    full = pool.metrics(np.ones(12, dtype=int))
    for k, v in pooled_metrics(y, s).items():
        assert full[k] == pytest.approx(v, abs=1e-12)
    w = rng.integers(0, 3, 12)
    w[0] = w[-1] = 1  # both classes present
    yy = np.concatenate([np.tile(a, k) for a, k in zip(labels, w, strict=True)])
    ss = np.concatenate([np.tile(a, k) for a, k in zip(scores, w, strict=True)])
    got, ref = pool.metrics(w), sk(yy, ss)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-12), k


def test_pool_leading_zero_weight_groups_add_no_area() -> None:
    # The top-scoring video gets weight 0: PR must start at (0, 1) as if it were absent.
    labels = [np.array([1, 0]), np.array([1, 0, 1, 0])]
    scores = [np.array([0.99, 0.98]), np.array([0.9, 0.8, 0.7, 0.1])]
    got = FramePool.build(labels, scores).metrics(np.array([0, 1]))
    ref = sk(labels[1], scores[1])
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-12)


def test_pool_rejects_fractional_weights() -> None:
    pool = FramePool.build([np.array([0, 1])], [np.array([0.1, 0.2])])
    with pytest.raises(ValueError, match="integers"):
        pool.metrics(np.array([0.5]))


def test_curve_metrics_float_and_int_counts_agree() -> None:
    rng = np.random.default_rng(3)
    dp, dn = rng.integers(0, 4, (5, 50)), rng.integers(0, 4, (5, 50))
    a, b = curve_metrics(dp, dn), curve_metrics(dp.astype(float), dn.astype(float))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12)


def test_per_class_and_anomalous_only_conventions() -> None:
    # video 0: Abuse, video 1: Abuse, video 2: Riot, videos 3-4: Normal.
    labels = [np.array([0, 1, 1]), np.array([1, 0]), np.array([0, 1]), np.zeros(3), np.zeros(2)]
    scores = [np.array([0.1, 0.8, 0.6]), np.array([0.2, 0.3]), np.array([0.5, 0.4]),
              np.array([0.9, 0.05, 0.1]), np.array([0.7, 0.0])]
    cats = ["Abuse", "Abuse", "Riot", "Normal", "Normal"]
    pool = FramePool.build(labels, scores)
    per_class = per_class_metrics(pool, cats)
    assert set(per_class) == {"Abuse", "Riot"}
    ref = sk(np.concatenate(labels[:2]), np.concatenate(scores[:2]))
    assert per_class["Abuse"]["roc_auc"] == pytest.approx(ref["roc_auc"], abs=1e-12)
    assert per_class["Abuse"]["n_videos"] == 2
    assert per_class["Riot"]["roc_auc"] == pytest.approx(0.0)
    with_normal = per_class_metrics(pool, cats, with_normal=True)
    ref = sk(np.concatenate(labels[:2] + labels[3:]), np.concatenate(scores[:2] + scores[3:]))
    assert with_normal["Abuse"]["roc_auc"] == pytest.approx(ref["roc_auc"], abs=1e-12)
    anomalous = anomalous_videos_metrics(pool, np.array([1, 1, 1, 0, 0]))
    ref = sk(np.concatenate(labels[:3]), np.concatenate(scores[:3]))
    assert anomalous["roc_auc"] == pytest.approx(ref["roc_auc"], abs=1e-12)
    # multi-label videos enter no class
    assert "Riot" not in per_class_metrics(pool, ["Abuse", "Abuse", "Riot,Abuse", "Normal",
                                                  "Normal"])


def test_video_roc_auc_uses_max_frame_score() -> None:
    scores = [np.array([0.1, 0.9]), np.array([0.5, 0.4]), np.array([0.95, 0.0])]
    top = video_max_scores(scores)
    np.testing.assert_array_equal(top, [0.9, 0.5, 0.95])
    assert video_roc_auc(np.array([1, 0, 0]), top) == pytest.approx(0.5)


def test_bootstrap_resamples_videos_with_replacement() -> None:
    rng = np.random.default_rng(0)
    y, s = random_case(rng, 2000, 2)
    labels, scores = split_videos(rng, y, s, 20)
    pool = FramePool.build(labels, scores)
    spec = BootstrapSpec(n=50, seed=7)
    counts = draw_counts(20, 50, 7)
    assert counts.shape == (20, 50) and (counts.sum(axis=0) == 20).all()
    ci = bootstrap_ci({"": BootstrapEntry(pool)}, spec)[""]
    # one resample by hand: concatenate the drawn videos and ask sklearn
    values = []
    for b in range(50):
        yy = np.concatenate([np.tile(labels[v], counts[v, b]) for v in range(20)])
        ss = np.concatenate([np.tile(scores[v], counts[v, b]) for v in range(20)])
        values.append(sk(yy, ss)["roc_auc"])
    assert ci["roc_auc"] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert bootstrap_ci({"": BootstrapEntry(pool)}, spec) == {"": ci}  # deterministic
    assert bootstrap_ci({"": BootstrapEntry(pool)}, BootstrapSpec(n=0)) == {}


def test_pooled_metrics_fast_on_xd_sized_input() -> None:
    """The benchmark's budget: all pooled metrics on 2.3 M frames in < 2 s."""
    rng = np.random.default_rng(0)
    n = 2_335_801
    y = (rng.random(n) < 0.23).astype(np.uint8)
    s = rng.random(n)
    best = min(_timed(pooled_metrics, y, s) for _ in range(2))
    assert best < 2.0


def _timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t
