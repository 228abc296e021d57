"""HyCoVAD proposer training: batch construction, configuration, and the learning tests on the
ComplexVAD sample world: ``vad-eval train --method hycovad --task complexvad --split sample``
with no other flags (the proposer on the normal training videos), then the proposer alone and
the whole pipeline (``vad-eval --method hycovad ... --checkpoint CKPT``) on the test split."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from harness.training import TrainingError, TrainJob
from harness.video import read_frames
from methods.hycovad.proposer import Proposer, aggregate
from methods.hycovad.train import (
    HyCoVADTrainConfig,
    Segment,
    context_radius,
    irregular_offsets,
    load_config,
    plan_segments,
    random_perms,
    segment_cost,
    train_hycovad,
)


# -- batch construction and configuration ------------------------------------------------------
def test_irregular_offsets_are_irregular() -> None:
    rng = np.random.default_rng(0)
    regular = np.array([-6, -3, 0, 3, 6])
    offs = irregular_offsets(rng, 400, t=2, stride=3, max_gap_factor=3)
    assert offs.shape == (400, 5)
    shuffled = np.array([sorted(o) == sorted(regular) for o in offs])
    assert 150 < shuffled.sum() < 250  # about half of each kind
    for o in offs[shuffled]:
        assert not np.array_equal(o, regular) and not np.array_equal(o, regular[::-1])
    for o in offs[~shuffled]:
        gaps = np.diff(o)
        assert o[2] == 0 and np.all(gaps >= 4) and np.all(gaps <= 9)  # stride+1 .. 3*stride


def test_random_perms_are_permutations() -> None:
    perms = random_perms(np.random.default_rng(1), 200)
    assert perms.shape == (200, 4)
    assert all(sorted(p) == [0, 1, 2, 3] for p in perms)
    assert len({tuple(p) for p in perms}) == 24  # all 4! arrangements occur


def test_load_config_layers_and_errors(tmp_path: Path) -> None:
    job = TrainJob(method="hycovad", task="complexvad", out=tmp_path, steps=7,
                   method_args={"batch_size": 4, "level": "both"})
    cfg = load_config(job)
    assert isinstance(cfg, HyCoVADTrainConfig)
    assert (cfg.total_steps(), cfg.batch_size, cfg.level) == (7, 4, "both")
    assert cfg.steps_per_epoch == 20 and cfg.tasks == ("irregularity", "middle", "jigsaw",
                                                       "social")  # from the tiny preset
    assert cfg.proposer_config().level == "both"
    with pytest.raises(TrainingError, match="--stage"):
        load_config(TrainJob(method="hycovad", task="complexvad", out=tmp_path, stage="sft"))
    with pytest.raises(TrainingError, match="unknown"):
        load_config(TrainJob(method="hycovad", task="complexvad", out=tmp_path,
                             method_args={"lr": 1.0}))
    with pytest.raises(TrainingError, match="bad HyCoVAD"):
        load_config(TrainJob(method="hycovad", task="complexvad", out=tmp_path,
                             method_args={"tasks": ["middle", "colour"]}))


def test_training_needs_normal_videos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.registry import TASKS
    from tasks.training import TrainVideo

    class AllAnomalous:
        def load_train(self, data_root: Path | None, split: str) -> list[TrainVideo]:
            return [TrainVideo("a", None, 1, "Fight", 30.0)]

    monkeypatch.setattr(TASKS, "get", lambda name: AllAnomalous)
    with pytest.raises(TrainingError, match="normal"):
        train_hycovad(TrainJob(method="hycovad", task="fake", out=tmp_path, split="sample"))


def test_plan_segments_hand_cases() -> None:
    rng = np.random.default_rng(0)
    # everything fits: whole videos, no randomness
    assert plan_segments([100, 50], 150, 30, 5, rng) == [Segment(0, 0, 100), Segment(1, 0, 50)]
    # cost = targets + radius each side, clipped to the video
    assert segment_cost(Segment(0, 0, 50), 1000, 10) == 60
    assert segment_cost(Segment(0, 100, 150), 1000, 10) == 70
    assert segment_cost(Segment(0, 980, 1000), 1000, 10) == 30
    for seed in range(20):
        segs = plan_segments([1000, 400], 200, 50, 10, np.random.default_rng(seed))
        lengths = [1000, 400]
        assert all(s.stop - s.start == 50 and s.start >= 0 and s.stop <= lengths[s.video]
                   for s in segs)
        assert sum(segment_cost(s, lengths[s.video], 10) for s in segs) <= 200
        assert len(segs) >= 2  # two interior segments (70 each) always fit in 200
    # a budget below one segment still gives one
    assert len(plan_segments([1000], 10, 50, 10, np.random.default_rng(0))) == 1
    # a video shorter than a segment is taken whole
    assert plan_segments([20, 5000], 100, 50, 0, np.random.default_rng(3))[0] in (
        Segment(0, 0, 20), *[Segment(1, k, k + 50) for k in range(4951)])


def test_context_radius_covers_skipped_sequences_and_tracks() -> None:
    cfg = HyCoVADTrainConfig(t=2, stride=3, max_gap_factor=3, track_steps=8, track_stride=3)
    # skipped gaps reach 3 * 3 = 9 frames, t = 2 of them each side; tracks 7 steps of 3
    assert context_radius(cfg) == 2 * 9 + 7 * 3
    offs = irregular_offsets(np.random.default_rng(0), 500, 2, 3, 3)
    assert np.abs(offs).max() <= 2 * 9


def test_training_streams_segments_when_videos_exceed_the_budget(tmp_path: Path) -> None:
    """With a budget below the sample's 1,232 normal frames, each epoch decodes new random
    segments and never holds more than the budget (plus the detector's background frames)."""
    out = tmp_path / "ckpt"
    res = train_hycovad(TrainJob(
        method="hycovad", task="complexvad", out=out, split="sample", steps=4,
        method_args={"memory_frames": 300, "segment_frames": 60, "steps_per_epoch": 2,
                     "phase0_epochs": 1, "phase1_epochs": 0, "calibration_stride": 20}))
    s = res.summary
    assert s["streaming"] is True and s["loads"] == 2 and s["steps"] == 4
    background = HyCoVADTrainConfig().background_frames
    assert s["max_decoded_frames"] <= 300 + 3 * 2 * background
    assert Proposer.load(out).calibration["frames"] > 0


# -- the learning test -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Score on one torch thread, as the tiny preset trains (quicker on a shared 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, one_thread: None
            ) -> tuple[Path, dict[str, Any], float]:
    """The issue's command with no other flags: the tiny preset on the sample world's normal
    training videos."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("hycovad") / "ckpt"
    t0 = time.perf_counter()
    assert main(["train", "--method", "hycovad", "--task", "complexvad", "--split", "sample",
                 "--out", str(out), "--quiet"]) == 0
    seconds = time.perf_counter() - t0
    summary = json.loads((out / "hycovad.json").read_text())["extra"]["train"]["summary"]
    return out, summary, seconds


def test_training_writes_checkpoint_log_and_calibration(
        trained: tuple[Path, dict[str, Any], float]) -> None:
    out, summary, seconds = trained
    cfg = HyCoVADTrainConfig(**{k: v for k, v in json.loads(
        (out / "hycovad.json").read_text())["extra"]["train"]["config"].items()})
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(rows) == summary["steps"] == cfg.total_steps()
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    p0, p1 = cfg.phase0_epochs * cfg.steps_per_epoch, cfg.phase1_epochs * cfg.steps_per_epoch
    assert {r["phase"] for r in rows[:p0]} == {0} and {r["phase"] for r in rows[p0:p0 + p1]} \
        == {1} and {r["phase"] for r in rows[p0 + p1:]} == {2}
    for r in rows:  # GradNorm keeps sum(w) = T
        assert sum(r[f"weight_{t}"] for t in cfg.tasks) == pytest.approx(len(cfg.tasks))
    assert summary["normal_videos"] == 6 and summary["skipped_anomalous_videos"] == 6
    assert summary["final_losses"]["loss"] < summary["first_losses"]["loss"]
    prop = Proposer.load(out)
    q = prop.calibration["total_quantiles"]
    values = [q[k] for k in ("0.5", "0.9", "0.95", "0.99")]
    assert values == sorted(values) and values[0] > 0
    assert prop.weights == pytest.approx(summary["weights"])
    print(f"\nHyCoVAD tiny training: {seconds:.1f} s (steps {summary['steps']}, prep "
          f"{summary['prep_seconds']} s, calibration {summary['calibration_seconds']} s)")
    print("first losses", json.dumps(summary["first_losses"]))
    print("final losses", json.dumps(summary["final_losses"]))
    print("weights", json.dumps(summary["weights"]), "calibration", json.dumps(q))


def test_trained_proposer_separates_anomalies(trained: tuple[Path, dict[str, Any], float]
                                               ) -> None:
    """Frame-level ROC AUC over every 10th frame of the sample test split: the trained proposer
    beats chance clearly and beats the untrained network of the same seed."""
    from harness.registry import TASKS

    out, _, _ = trained
    prop = Proposer.load(out)
    untrained = Proposer.untrained(prop.config, seed=0)
    samples = TASKS.get("complexvad")().load(None, "sample")  # type: ignore[operator]
    totals: dict[str, list[np.ndarray]] = {"trained": [], "untrained": []}
    per_task: dict[str, list[np.ndarray]] = {t: [] for t in prop.config.tasks}
    labels = []
    for s in samples:
        targets = np.arange(0, s.num_frames, 10)
        frames = read_frames(s.path, prop.context_indices(targets, s.num_frames))
        items = prop.items(frames, targets, s.num_frames)  # the same items for both networks
        for name, p in (("trained", prop), ("untrained", untrained)):
            res = aggregate(targets, items, p.item_losses(frames, items, s.num_frames),
                            p.weights)
            totals[name].append(res.total)
            if name == "trained":
                for t in per_task:
                    per_task[t].append(res.per_task[t])
        labels.append(np.asarray(s.labels)[targets])
    y = np.concatenate(labels)
    assert 0 < y.sum() < len(y)
    auc = {k: float(roc_auc_score(y, np.concatenate(v))) for k, v in totals.items()}
    task_auc = {t: round(float(roc_auc_score(y, np.concatenate(v))), 3)
                for t, v in per_task.items()}
    above = float((np.concatenate(totals["trained"]) > 0.3).mean())
    print(f"\nHyCoVAD proposer AUC on {len(y)} test frames ({int(y.sum())} anomalous): trained "
          f"{auc['trained']:.3f}, untrained {auc['untrained']:.3f}; per task (trained, at the "
          f"arg-max object) {task_auc}; frames with total > 0.3: {above:.2f}")
    assert auc["trained"] >= 0.6
    assert auc["trained"] > auc["untrained"] + 0.02


def _run(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> dict[str, Any]:
    from harness.cli import main

    capsys.readouterr()
    assert main(["--method", "hycovad", "--task", "complexvad", "--split", "sample", "--json",
                 "--no-progress", "--no-cache", "--out", str(out), *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_trained_pipeline_beats_the_untrained_one(
        trained: tuple[Path, dict[str, Any], float], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``vad-eval --method hycovad --task complexvad --split sample [--checkpoint CKPT]`` with
    the tiny VLM as captioner and LLM: the checkpoint's pipeline scores a higher ``roc_auc``.

    The tiny random LLM never writes a readable "Anomaly: Yes", so every decision is "No", EMS
    gives every grid frame 0, and the proposer's tie-breaker orders the frames: the gain is the
    proposer's. The run reports how many grid frames went to the LLM."""
    ckpt, _, _ = trained
    before = _run(capsys, tmp_path)
    after = _run(capsys, tmp_path, "--checkpoint", str(ckpt))
    print(f"\nHyCoVAD pipeline roc_auc: untrained {before['metrics']['roc_auc']:.3f}, trained "
          f"{after['metrics']['roc_auc']:.3f}; suspects {after['method_summary']}")
    assert after["metrics"]["roc_auc"] > before["metrics"]["roc_auc"] + 0.02
    # the SSL-only step is reported next to the final scores, and equals them in ranking here
    assert after["steps"]["proposer"]["roc_auc"] == pytest.approx(after["metrics"]["roc_auc"])
    assert after["steps"]["decisions"]["roc_auc"] == 0.5
    summary = after["method_summary"]
    # the checkpoint's median training loss is the threshold: part of the grid goes to the LLM
    assert 0 < summary["suspects"] < summary["grid_frames"]
    assert summary["requests_decisions"] == summary["suspects"]
    assert summary["llm_decisions_unreadable"] == summary["suspects"]
    # an untrained proposer has no training losses: the paper's absolute 0.3 applies, and every
    # frame of the tiny network's loss scale exceeds it
    assert before["method_summary"]["suspect_fraction"] == 1.0
