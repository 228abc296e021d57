"""End to end through the CLI on the sample world: the frozen baseline on the tiny model,
determinism, kill-and-resume, corrupted videos, concurrent runs, metrics vs scikit-learn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from harness import index
from harness.cli import main
from harness.sample_world import ensure_sample

CLI = [sys.executable, "-m", "harness.cli"]


def _run_cli(*args: str) -> int:
    return main(list(args))


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]


def _labels_from_official_file(root: Path) -> dict[str, np.ndarray]:
    """Independent reading of the UCF-format annotation: name class s1 e1 s2 e2, inclusive."""
    out = {}
    ann = root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    for line in ann.read_text().splitlines():
        parts = line.split()
        if parts:
            out[parts[0].removesuffix(".mp4")] = [int(x) for x in parts[2:6]]
    return out  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ucf_sample() -> Path:
    return ensure_sample("ucf_crime")


def test_frozen_on_tiny_model_reports_every_step(tmp_path: Path, capsys: pytest.CaptureFixture
                                                 ) -> None:
    rc = _run_cli("--method", "frozen", "--task", "ucf_crime", "--split", "sample", "--limit", "4",
                  "--out", str(tmp_path), "--run-name", "r", "--no-progress", "--batch-size", "4")
    assert rc == 0
    out = capsys.readouterr().out
    assert "plumbing check" in out and "run directory:" in out
    m = _metrics(tmp_path / "r")
    assert set(m["steps"]) >= {"step1", "step2"}
    assert 0.0 <= m["metrics"]["roc_auc"] <= 1.0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["protocol"]["label_convention"] == "inclusive"
    # the recorded window grid is the one the method used (VERA: 8 frames by arange)
    assert cfg["protocol"]["window"]["frames_per_window"] == 8
    assert cfg["protocol"]["window"]["sampler"] == "arange"
    assert m["protocol"]["window"] == cfg["protocol"]["window"]
    assert (tmp_path / "r" / "errors.jsonl").read_text() == ""
    assert cfg["dataset"]["fingerprint"] and cfg["versions"]["torch"]
    rec = _records(tmp_path / "r")[0]
    assert len(rec["windows"]["step1"]) == -(-rec["num_frames"] // 16)


def test_same_seed_same_predictions(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _run_cli("--method", "frozen", "--task", "ucf_crime", "--limit", "2", "--seed", "3",
                        "--out", str(tmp_path), "--run-name", name, "--no-progress",
                        "--no-cache") == 0
    a = (tmp_path / "a" / "predictions.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "predictions.jsonl").read_bytes()
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


def test_metrics_match_sklearn(tmp_path: Path, ucf_sample: Path) -> None:
    assert _run_cli("--method", "frame_diff", "--task", "ucf_crime", "--out", str(tmp_path),
                    "--run-name", "fd", "--no-progress") == 0
    ann = _labels_from_official_file(ucf_sample)
    ys, ss = [], []
    for rec in sorted(_records(tmp_path / "fd"), key=lambda r: r["video_id"]):
        y = np.zeros(rec["num_frames"], np.uint8)
        iv = ann[rec["video_id"]]
        for s, e in ((iv[0], iv[1]), (iv[2], iv[3])):
            if s >= 0:
                y[s:e + 1] = 1
        ys.append(y)
        ss.append(np.asarray(rec["scores"]))
    expected = roc_auc_score(np.concatenate(ys), np.concatenate(ss))
    got = _metrics(tmp_path / "fd")["metrics"]["roc_auc"]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got > 0.6  # pixels alone detect the sample world's anomalies


def _wait_for_records(path: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {n} records: {proc.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    raise AssertionError("timed out waiting for records")


def test_kill_and_resume_equals_uninterrupted(tmp_path: Path) -> None:
    base = ["--method", "frozen", "--task", "ucf_crime", "--limit", "6", "--out", str(tmp_path),
            "--no-progress", "--batch-size", "2", "--no-cache"]
    assert _run_cli(*base, "--run-name", "whole") == 0
    proc = subprocess.Popen([*CLI, *base, "--run-name", "killed"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    preds = tmp_path / "killed" / "predictions.jsonl"
    try:
        _wait_for_records(preds, 2, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    n_before = len(preds.read_text().splitlines())
    assert n_before < 6
    assert _run_cli(*base, "--run-name", "killed", "--resume") == 0
    ids = [r["video_id"] for r in _records(tmp_path / "killed")]
    assert len(ids) == len(set(ids)) == 6
    assert _metrics(tmp_path / "killed") == _metrics(tmp_path / "whole")
    whole = {r["video_id"]: r for r in _records(tmp_path / "whole")}
    assert all(whole[r["video_id"]] == r for r in _records(tmp_path / "killed"))


def test_corrupted_video_is_recorded_and_skipped(tmp_path: Path, ucf_sample: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "ucf"
    shutil.copytree(ucf_sample, data)
    tests = [data / x for x in (data / "Anomaly_Test.txt").read_text().split()]
    victim, empty = tests[0], tests[-1]
    victim.write_bytes(victim.read_bytes()[:200])
    empty.write_bytes(b"")
    args = ["--method", "frame_diff", "--task", "ucf_crime", "--data-root", str(data),
            "--out", str(tmp_path / "runs"), "--no-progress"]
    assert _run_cli(*args, "--run-name", "lenient") == 0
    m = _metrics(tmp_path / "runs" / "lenient")
    assert m["errors"]["n_videos"] == 2
    assert m["metrics"]["missing_videos"] == 2
    errors = [json.loads(x) for x in
              (tmp_path / "runs" / "lenient" / "errors.jsonl").read_text().splitlines()]
    assert {Path(e["path"]).name for e in errors} == {victim.name, empty.name}
    assert any("empty" in e["reason"] for e in errors)
    assert _run_cli(*args, "--run-name", "strict", "--strict") == 2
    assert "--strict" in capsys.readouterr().err


def test_two_concurrent_runs_both_land(tmp_path: Path) -> None:
    env = dict(os.environ)
    procs = [
        subprocess.Popen([*CLI, "--method", m, "--task", "ucf_crime", "--out", str(tmp_path),
                          "--run-name", m, "--no-progress"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for m in ("frame_diff", "constant")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    rows = {r["run_name"]: r for r in index.list_runs(tmp_path)}
    assert set(rows) == {"frame_diff", "constant"}
    assert all(r["status"] == "done" and r["metrics"]["roc_auc"] is not None
               for r in rows.values())
    assert rows["constant"]["metrics"]["roc_auc"] == pytest.approx(0.5)


def test_unknown_names_suggest(capsys: pytest.CaptureFixture) -> None:
    assert _run_cli("--method", "frozn", "--task", "ucf_crime") == 2
    assert "Did you mean 'frozen'" in capsys.readouterr().err
    assert _run_cli("--method", "frozen", "--task", "ucf_crme") == 2
    assert "Did you mean 'ucf_crime'" in capsys.readouterr().err
