"""Vad-R1's learning check (issue 7): ``vad-eval train --method vad-r1`` with no other flags (SFT
then AVA-GRPO on the tiny preset) makes the tiny model's detection ``accuracy`` on the sample
world's ``vad_reasoning`` test split clearly higher than the untrained model's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from methods.vad_r1.policy import read_meta


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample", "--json",
                 "--no-progress", "--no-cache", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_sft_then_ava_grpo_beats_the_untrained_model(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample",
                 "--out", str(ckpt), "--quiet"]) == 0
    summary = read_meta(ckpt)["summary"]
    assert summary["stages"] == ["sft", "grpo"]
    assert summary["sft"]["final_loss"] < 0.1 * summary["sft"]["first_loss"]
    log = [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines()]
    assert sum(r["stage"] == "grpo" for r in log) == summary["grpo"]["steps"] > 0
    untrained = _run(capsys, ["--out", str(tmp_path / "runs")])
    trained = _run(capsys, ["--out", str(tmp_path / "runs"), "--checkpoint", str(ckpt)])
    before, after = untrained["metrics"]["accuracy"], trained["metrics"]["accuracy"]
    print("vad_reasoning accuracy: untrained", before, "trained", after)
    # 8 test videos (5 abnormal, 3 normal): the untrained model never writes a readable
    # <which>, which counts as abnormal (0.625); +0.2 means at least two more videos right,
    # i.e. normal videos recognised as normal without losing the abnormal ones.
    assert after >= before + 0.2
