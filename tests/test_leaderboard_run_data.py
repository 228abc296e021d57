"""What the leaderboard's plots read from a run (``leaderboard.run_data``) and the paired
bootstrap of two runs (``leaderboard.compare``), on two real sample-world runs.

References: scikit-learn's ``roc_auc_score`` / ``roc_curve`` / ``precision_recall_curve``, the
sample world's annotation file read here independently (ends inclusive), and a naive
per-resample loop for the bootstrap.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score, roc_curve

from harness.cli import main
from harness.sample_world import ensure_sample
from leaderboard.compare import paired_bootstrap
from leaderboard.run_data import (
    RunDataError,
    VideoTrace,
    curves,
    interval_frame,
    load_traces,
    per_class,
    timeline,
)


def _run(out: Path, method: str) -> Path:
    rc = main(["--method", method, "--task", "ucf_crime", "--split", "sample", "--out",
               str(out), "--run-name", method, "--no-progress", "--no-cache"])
    assert rc == 0
    return out / method


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("lb_runs")
    return {m: _run(out, m) for m in ("frame_diff", "constant")}


@pytest.fixture(scope="module")
def traces(runs: dict[str, Path]) -> dict[str, list[VideoTrace]]:
    return {m: load_traces(d) for m, d in runs.items()}


def _metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


def _pooled(ts: list[VideoTrace]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([t.labels for t in ts]), np.concatenate([t.scores for t in ts])


def _annotation_intervals() -> dict[str, list[tuple[int, int]]]:
    """Independent reading of the UCF-format annotation: ``name class s1 e1 s2 e2``,
    0-based, ends inclusive, -1 for no interval."""
    ann = ensure_sample("ucf_crime") / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    out = {}
    for line in ann.read_text().splitlines():
        parts = line.split()
        if parts:
            s1, e1, s2, e2 = (int(x) for x in parts[2:6])
            out[parts[0].removesuffix(".mp4")] = [(s, e) for s, e in ((s1, e1), (s2, e2))
                                                  if s >= 0]
    return out


def _expected_labels(video_id: str, n: int) -> np.ndarray:
    want = np.zeros(n, dtype=np.uint8)
    for s, e in _annotation_intervals().get(video_id, []):
        want[s:e + 1] = 1  # the annotation's end is inclusive
    return want


# --------------------------------------------------------------------------- load_traces

def test_one_trace_per_video(runs: dict[str, Path], traces: dict[str, list[VideoTrace]]
                             ) -> None:
    for method, ts in traces.items():
        m = _metrics(runs[method])["metrics"]
        assert len(ts) == m["n_videos"] == 16
        assert len({t.video_id for t in ts}) == len(ts)
        assert sum(len(t.labels) for t in ts) == m["n_frames"]
        assert sum(int(t.labels.sum()) for t in ts) == m["n_anomalous_frames"]
        for t in ts:
            assert t.labels.shape == t.scores.shape and t.labels.ndim == 1
            assert set(np.unique(t.labels)) <= {0, 1}
            assert t.fps == 30.0
    # the same videos, the same labels, in the same order in both runs
    a, b = traces["frame_diff"], traces["constant"]
    assert [t.video_id for t in a] == [t.video_id for t in b]
    assert all(np.array_equal(x.labels, y.labels) for x, y in zip(a, b, strict=True))


def test_labels_match_the_annotation_file(traces: dict[str, list[VideoTrace]]) -> None:
    ts = traces["frame_diff"]
    ann = _annotation_intervals()
    assert {t.video_id for t in ts} == set(ann)
    assert {t.video_id for t in ts if t.category != "Normal"} == {k for k, v in ann.items() if v}
    for t in ts:
        assert np.array_equal(t.labels, _expected_labels(t.video_id, len(t.labels))), \
            t.video_id


def test_pooled_metrics_equal_sklearn_and_the_run(runs: dict[str, Path],
                                                  traces: dict[str, list[VideoTrace]]) -> None:
    for method, ts in traces.items():
        y, s = _pooled(ts)
        precision, recall, _ = precision_recall_curve(y, s)
        m = _metrics(runs[method])["metrics"]
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert m["pr_auc"] == pytest.approx(auc(recall, precision), abs=1e-12)
    assert _metrics(runs["constant"])["metrics"]["roc_auc"] == pytest.approx(0.5, abs=1e-12)


# --------------------------------------------------------------------------- curves

@pytest.mark.parametrize("method", ["frame_diff", "constant"])
def test_curves_equal_sklearn(traces: dict[str, list[VideoTrace]], method: str) -> None:
    ts = traces[method]
    y, s = _pooled(ts)
    c = curves(ts, max_points=10**9)
    roc, pr = c["roc"], c["pr"]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(roc["fpr"].to_numpy(), fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(roc["tpr"].to_numpy(), tpr, rtol=0, atol=1e-12)
    area = np.trapezoid(roc["tpr"].to_numpy(), roc["fpr"].to_numpy())
    assert area == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # sklearn: increasing thresholds (recall falling), end point (recall 0, precision 1) last;
    # curves: one point per threshold, highest threshold first, no end point
    precision, recall, _ = precision_recall_curve(y, s)
    sk = np.c_[recall[:-1][::-1], precision[:-1][::-1]]
    ours = pr[["recall", "precision"]].to_numpy()
    assert len(ours) >= len(sk)
    np.testing.assert_allclose(ours[:len(sk)], sk, rtol=0, atol=1e-12)
    assert (ours[len(sk):, 0] == 1.0).all()  # only full-recall points beyond sklearn's cut
    pr_area = np.trapezoid(np.r_[1.0, ours[:, 1]], np.r_[0.0, ours[:, 0]])
    assert pr_area == pytest.approx(auc(recall, precision), abs=1e-12)


def test_curves_thinning(traces: dict[str, list[VideoTrace]]) -> None:
    ts = traces["frame_diff"]
    full = curves(ts, max_points=10**9)
    assert len(full["pr"]) > 1000
    for max_points in (2, 7, 50, 333):
        thin = curves(ts, max_points=max_points)
        roc, pr = thin["roc"], thin["pr"]
        assert 2 <= len(pr) <= max_points
        assert len(roc) == len(pr) + 1 <= max_points + 1  # + the ROC origin
        assert tuple(roc.iloc[0]) == (0.0, 0.0)
        assert tuple(roc.iloc[1]) == tuple(full["roc"].iloc[1])  # first threshold kept
        assert tuple(roc.iloc[-1]) == (1.0, 1.0) == tuple(full["roc"].iloc[-1])
        assert tuple(pr.iloc[0]) == tuple(full["pr"].iloc[0])
        assert tuple(pr.iloc[-1]) == tuple(full["pr"].iloc[-1])
        # every kept point is a point of the full curve, in the same order
        full_pts = [tuple(p) for p in full["pr"].to_numpy()]
        idx = [full_pts.index(tuple(p)) for p in pr.to_numpy()]
        assert idx == sorted(idx)
        assert roc["fpr"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing


def test_curves_without_both_classes_are_empty(traces: dict[str, list[VideoTrace]]) -> None:
    normal = [t for t in traces["frame_diff"] if t.category == "Normal"]
    c = curves(normal)
    assert c["roc"].empty and c["pr"].empty
    assert list(c["roc"].columns) == ["fpr", "tpr"]
    assert curves([])["pr"].empty


# --------------------------------------------------------------------------- intervals

def test_intervals_cover_exactly_the_labelled_frames(traces: dict[str, list[VideoTrace]]
                                                     ) -> None:
    n_shaded = 0
    for t in traces["frame_diff"]:
        n = len(t.labels)
        iv = interval_frame(t)
        shaded = np.zeros(n, dtype=np.uint8)
        for start, end in zip(iv["start"], iv["end"], strict=True):
            assert float(start).is_integer() and float(end).is_integer()
            assert 0 <= start < end <= n
            shaded[int(start):int(end)] = 1  # end exclusive
            n_shaded += 1
        want = _expected_labels(t.video_id, n)
        assert np.array_equal(shaded, want), t.video_id
        np.testing.assert_allclose(iv["start_s"], iv["start"] / 30.0)
        np.testing.assert_allclose(iv["end_s"], iv["end"] / 30.0)
        tl = timeline(t, max_points=10**9)
        assert list(tl["frame"]) == list(range(n))
        np.testing.assert_allclose(tl["seconds"], np.arange(n) / 30.0)
        assert np.array_equal(tl["label"].to_numpy(), want)
        np.testing.assert_array_equal(tl["score"].to_numpy(), t.scores)
    assert n_shaded >= 8  # every anomalous video has at least one interval


def test_normal_video_has_no_interval(traces: dict[str, list[VideoTrace]]) -> None:
    t = next(t for t in traces["frame_diff"] if t.category == "Normal")
    iv = interval_frame(t)
    assert iv.empty and list(iv.columns) == ["start", "end", "start_s", "end_s"]


def test_timeline_thinning(traces: dict[str, list[VideoTrace]]) -> None:
    t = traces["frame_diff"][0]
    tl = timeline(t, max_points=20)
    assert len(tl) <= 20
    assert tl["frame"].iloc[0] == 0 and tl["frame"].iloc[-1] == len(t.scores) - 1
    frames = tl["frame"].to_numpy()
    np.testing.assert_array_equal(tl["score"].to_numpy(), t.scores[frames])
    np.testing.assert_array_equal(tl["label"].to_numpy(), t.labels[frames])


# --------------------------------------------------------------------------- per_class

def test_per_class_values(runs: dict[str, Path], traces: dict[str, list[VideoTrace]]) -> None:
    stored = _metrics(runs["frame_diff"])["per_class"]
    df = per_class(runs["frame_diff"])
    assert list(df.columns) == ["class", "metric", "value", "n_videos"]
    assert set(df["class"]) == set(stored) == {
        t.category for t in traces["frame_diff"] if t.category != "Normal"}
    for rec in df.to_dict("records"):
        assert rec["value"] == stored[rec["class"]][rec["metric"]]
        assert rec["n_videos"] == stored[rec["class"]]["n_videos"]
    assert set(df["metric"]) == {"roc_auc", "pr_auc"}
    # independently: each class's videos only, pooled, through sklearn
    for cls_name in stored:
        ts = [t for t in traces["frame_diff"] if t.category == cls_name]
        y, s = _pooled(ts)
        got = df[(df["class"] == cls_name) & (df["metric"] == "roc_auc")]["value"].item()
        assert got == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        precision, recall, _ = precision_recall_curve(y, s)
        got = df[(df["class"] == cls_name) & (df["metric"] == "pr_auc")]["value"].item()
        assert got == pytest.approx(auc(recall, precision), abs=1e-12)
    const = per_class(runs["constant"])
    assert (const[const["metric"] == "roc_auc"]["value"] == 0.5).all()


def test_per_class_of_a_choice_task(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {
        "accuracy": 0.5, "acc_sora": 0.25, "acc_ped2": 0.75, "acc_avg": 0.4,
        "acc_avg_DoTA": 0.3, "n_videos": 10}}))
    df = per_class(tmp_path)
    assert sorted(zip(df["class"], df["metric"], df["value"], strict=True)) == [
        ("ped2", "accuracy", 0.75), ("sora", "accuracy", 0.25)]


# --------------------------------------------------------------------------- compare

def _naive_paired(a: list[VideoTrace], b: list[VideoTrace], metric: str, n: int, seed: int
                  ) -> tuple[float, float, np.ndarray]:
    """Observed difference and every resample's difference, one resample at a time: the same
    draws as ``tasks.metrics.bootstrap.draw_counts`` (rows = resamples), frames of each drawn
    video concatenated (repeats included), sklearn on each."""
    def value(y: np.ndarray, s: np.ndarray) -> float:
        if y.min() == y.max():
            return float("nan")
        if metric == "roc_auc":
            return float(roc_auc_score(y, s))
        precision, recall, _ = precision_recall_curve(y, s)
        return float(auc(recall, precision))

    v = len(a)
    draws = np.random.default_rng(seed).integers(0, v, size=(n, v))
    diffs = []
    for row in draws:
        y = np.concatenate([a[i].labels for i in row])
        sa = np.concatenate([a[i].scores for i in row])
        sb = np.concatenate([b[i].scores for i in row])
        diffs.append(value(y, sa) - value(y, sb))
    ya, sa = _pooled(a)
    _, sb = _pooled(b)
    return value(ya, sa), value(ya, sb), np.array(diffs)


def _noisy(ts: list[VideoTrace], scale: float, seed: int) -> list[VideoTrace]:
    rng = np.random.default_rng(seed)
    return [dataclasses.replace(t, scores=t.scores + rng.normal(0, scale, t.scores.shape))
            for t in ts]


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc"])
def test_paired_bootstrap_matches_naive_loop(traces: dict[str, list[VideoTrace]],
                                             metric: str) -> None:
    a = traces["frame_diff"]
    spread = float(np.std(_pooled(a)[1]))
    # the two real runs, and two close competitors (a with small noise of two seeds), whose
    # difference is near 0, so that p is strictly inside (0, 1)
    pairs = [(a, traces["constant"]),
             (_noisy(a, 0.05 * spread, seed=11), _noisy(a, 0.05 * spread, seed=12))]
    for x, y in pairs:
        got = paired_bootstrap(x, y, metric=metric, n=200, seed=3)
        obs_a, obs_b, d = _naive_paired(x, y, metric, n=200, seed=3)
        assert got.a == pytest.approx(obs_a, abs=1e-12)
        assert got.b == pytest.approx(obs_b, abs=1e-12)
        assert got.diff == pytest.approx(obs_a - obs_b, abs=1e-12)
        finite = d[np.isfinite(d)]
        lo, hi = np.percentile(finite, [2.5, 97.5])
        assert got.lo == pytest.approx(lo, abs=1e-9)
        assert got.hi == pytest.approx(hi, abs=1e-9)
        assert got.p_not_better == pytest.approx(np.mean(finite <= 0.0), abs=1e-12)
        assert (got.n_videos, got.resamples, got.seed, got.level) == (16, 200, 3, 0.95)
        assert got.metric == metric
    assert 0.0 < got.p_not_better < 1.0


def test_paired_bootstrap_of_a_run_with_itself(traces: dict[str, list[VideoTrace]]) -> None:
    a = traces["frame_diff"]
    got = paired_bootstrap(a, a, n=100, seed=1)
    assert got.diff == 0.0 and got.lo == 0.0 and got.hi == 0.0
    assert got.a == got.b == pytest.approx(roc_auc_score(*_pooled(a)), abs=1e-12)


def test_paired_bootstrap_uses_common_videos_only(traces: dict[str, list[VideoTrace]]) -> None:
    a, b = traces["frame_diff"], traces["constant"]
    got = paired_bootstrap(a, b[:10], n=0)
    assert got.n_videos == 10
    assert got.a == pytest.approx(roc_auc_score(*_pooled(a[:10])), abs=1e-12)
    assert np.isnan(got.lo) and np.isnan(got.hi)


def test_paired_bootstrap_errors(traces: dict[str, list[VideoTrace]]) -> None:
    a, b = traces["frame_diff"], traces["constant"]
    renamed = [dataclasses.replace(t, video_id=t.video_id + "_other") for t in b]
    with pytest.raises(RunDataError, match="no scored video in common"):
        paired_bootstrap(a, renamed, n=10)
    with pytest.raises(RunDataError):
        paired_bootstrap(a, b, metric="video_roc_auc", n=10)
    flipped = [dataclasses.replace(b[0], labels=1 - b[0].labels), *b[1:]]
    with pytest.raises(RunDataError, match=b[0].video_id):
        paired_bootstrap(a, flipped, n=10)


def test_load_traces_of_a_limited_run(traces: dict[str, list[VideoTrace]], tmp_path: Path
                                      ) -> None:
    # --limit keeps the first videos of the task's order; the traces must be those, with the
    # dataset fingerprint of the limited set accepted
    full = traces["constant"]
    rc = main(["--method", "constant", "--task", "ucf_crime", "--split", "sample", "--limit", "4",
               "--out", str(tmp_path), "--run-name", "lim", "--no-progress", "--no-cache"])
    assert rc == 0
    lim = load_traces(tmp_path / "lim")
    assert [t.video_id for t in lim] == [t.video_id for t in full[:4]]
    y, _ = _pooled(lim)
    assert len(y) == _metrics(tmp_path / "lim")["metrics"]["n_frames"]


# --------------------------------------------------------------------------- load_traces errors

def test_load_traces_of_a_language_task(tmp_path: Path) -> None:
    run_dir = tmp_path / "vane-run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"task": "vane", "split": "sample",
                                                     "resolved": {}}))
    with pytest.raises(RunDataError) as err:
        load_traces(run_dir)
    assert str(run_dir) in str(err.value) and "vane" in str(err.value)


def test_load_traces_without_config(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty-run"
    run_dir.mkdir()
    with pytest.raises(RunDataError) as err:
        load_traces(run_dir)
    assert str(run_dir) in str(err.value)


def test_load_traces_of_an_unregistered_task(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"task": "shanghaitech"}))
    with pytest.raises(RunDataError, match="shanghaitech"):
        load_traces(tmp_path)


def test_load_traces_refuses_another_dataset(runs: dict[str, Path], tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(runs["frame_diff"], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["dataset"]["fingerprint"] = "0" * 64
    (run_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDataError, match="fingerprint") as err:
        load_traces(run_dir)
    assert str(run_dir) in str(err.value)
