"""Anom-π end to end (issue 9): ``vad-eval train --method anom-pi`` with no other flags (iDPO on
the tiny preset) improves the AEI utility over training and the test ``roc_auc`` over the
untrained policy; evaluation runs on frame and language tasks and reports operator usage and
interaction cost; the passive baseline keeps the budget; bad checkpoints and settings fail
clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.training import CheckpointError, TrainingError
from methods.anom_pi.policy import read_meta


def _show(capsys: pytest.CaptureFixture[str], *parts: Any) -> None:
    """Print past pytest's capture (the figures the issue asks to report)."""
    with capsys.disabled():
        print(*parts)


def _run(capsys: pytest.CaptureFixture[str], task: str, *args: str,
         method: str = "anom-pi") -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--method", method, "--task", task, "--split", "sample", "--json",
                 "--no-progress", "--no-cache", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ckpt = tmp_path_factory.mktemp("anom_pi") / "ckpt"
    assert main(["train", "--method", "anom-pi", "--task", "ucf_crime", "--split", "sample",
                 "--out", str(ckpt), "--quiet"]) == 0
    return ckpt


def test_idpo_improves_aei_and_roc_auc(checkpoint: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    meta = read_meta(checkpoint)
    summary = meta["summary"]
    log = [json.loads(line) for line in (checkpoint / "train_log.jsonl").read_text()
           .splitlines()]
    assert len(log) == summary["steps"] == meta["config"]["steps"] > 0
    assert summary["pairs"] > 0 and summary["seconds"] < 600
    first, last = summary["first_quarter"], summary["last_quarter"]
    _show(capsys, "\nAEI over training (first -> last quarter):", first, "->", last)
    for row in summary["usage_by_step"]:
        _show(capsys, "round", row["step"], "operators", row["operators"], "actions",
              row["actions"])
    assert last["aei"] > first["aei"]
    untrained = _run(capsys, "ucf_crime", "--out", str(tmp_path / "runs"))
    trained = _run(capsys, "ucf_crime", "--out", str(tmp_path / "runs"),
                   "--checkpoint", str(checkpoint))
    before, after = untrained["metrics"]["roc_auc"], trained["metrics"]["roc_auc"]
    _show(capsys, "ucf_crime roc_auc: untrained", before, "trained", after)
    for name, res in (("untrained", untrained), ("trained", trained)):
        usage = res["method_summary"]
        _show(capsys, name, "operators", usage["operators"], "actions", usage["actions"],
              "mean_turns", usage["mean_turns"], "frames", usage["mean_frames_decoded"],
              "cost", usage["interaction_cost"], "collapse", usage["collapse"])
    assert after > before
    passive = _run(capsys, "ucf_crime", "--out", str(tmp_path / "runs"), "--checkpoint",
                   str(checkpoint), method="anom-pi-passive")
    _show(capsys, "same checkpoint, passive (48 frames in one view) roc_auc",
          passive["metrics"]["roc_auc"])
    assert passive["method_summary"]["mean_frames_decoded"] == 48.0
    # the checkpoint brought its review configuration and is recorded as trained
    review = meta["review"]
    assert review["env"]["frames_per_view"] == 8 and review["env"]["snippet"] == 2


def test_passive_baseline_spends_the_same_frame_budget_in_one_view(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(capsys, "ucf_crime", "--out", str(tmp_path / "runs"), "--limit", "3",
               method="anom-pi-passive")
    usage = res["method_summary"]
    assert usage["mean_turns"] == 1.0 and usage["mean_operators"] == 0.0
    assert usage["mean_frames_decoded"] == 48.0  # the active default budget, uniformly
    (run_dir,) = (tmp_path / "runs").glob("ucf_crime-anom-pi-passive-*")
    for line in (run_dir / "predictions.jsonl").read_text().splitlines():
        rec = json.loads(line)
        (view,) = rec["review"]["views"]
        assert view[0] == [0, rec["num_frames"]] and len(view[1]) == 48


@pytest.mark.parametrize("task", ["vad_reasoning", "hivau"])
def test_language_tasks_report_operator_usage(task: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(capsys, task, "--out", str(tmp_path / "runs"), "--limit", "2",
               "--method-arg", "max_turns=3", "--method-arg", "think_tokens=4")
    usage = res["method_summary"]
    assert usage["videos"] == 2 and usage["mean_turns"] <= 3
    assert set(usage["operators"]) == {"backtrack", "expand", "zoom", "entropy_bits"}
    assert "interaction_cost" in usage and res["metrics"]


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_bad_checkpoint_and_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    (tmp_path / "nockpt").mkdir()
    err = _fails(capsys, "--method", "anom-pi", "--task", "ucf_crime", "--split", "sample",
                 "--checkpoint", str(tmp_path / "nockpt"), "--out", str(tmp_path / "r"))
    assert "nockpt/anom_pi.json: not a Anom-π checkpoint" in err
    (tmp_path / "nockpt" / "anom_pi.json").write_text('{"format": "x"}')
    with pytest.raises(CheckpointError, match="anom_pi.json: field 'format'"):
        read_meta(tmp_path / "nockpt")
    train = ["train", "--method", "anom-pi", "--task", "ucf_crime", "--split", "sample",
             "--out", str(tmp_path / "c")]
    assert "unknown Anom-π training setting(s) ['rollout']" in _fails(
        capsys, *train, "--method-arg", "rollout=3")
    assert "one stage" in _fails(capsys, *train, "--stage", "sft")
    assert "rollouts >= 2" in _fails(capsys, *train, "--method-arg", "rollouts=1")
    with pytest.raises(TrainingError, match="no training videos"):
        from harness.training import TrainJob
        from methods.anom_pi.train import train_anom_pi

        train_anom_pi(TrainJob(method="anom-pi", task="hivau", out=tmp_path / "h",
                               split="sample"))


def test_lora_policy_trains_and_evaluates(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    ckpt = tmp_path / "lora"
    assert main(["train", "--method", "anom-pi", "--task", "ucf_crime", "--split", "sample",
                 "--out", str(ckpt), "--quiet", "--steps", "1", "--method-arg", "mode=lora",
                 "--method-arg", "lora_rank=2", "--method-arg", "batch_videos=2",
                 "--method-arg", "rollouts=2", "--method-arg", "max_turns=2"]) == 0
    meta = read_meta(ckpt)
    assert meta["mode"] == "lora" and (ckpt / "adapter_config.json").is_file()
    res = _run(capsys, "ucf_crime", "--out", str(tmp_path / "runs"), "--limit", "2",
               "--checkpoint", str(ckpt))
    assert res["method_summary"]["mean_turns"] <= 2  # the checkpoint's budget came with it
