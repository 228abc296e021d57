"""`vad-eval --method frozen --task T --split sample` on every language-side task (tiny model).

The tiny model answers gibberish, so the metrics are a plumbing check; what is asserted is the
plumbing: every query gets a raw response in the run store, the task's metric keys are all
there, unparsable answers are counted, and the protocol's frame plan was followed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

CASES = {
    "vru_accident_qa": ("acc_avg", "acc_weather_and_light", "acc_avg_CAP_DATA"),
    "vru_accident_caption": ("meteor", "rouge1_f", "rougeL_p"),
    "hivau": ("video_bleu_4", "video_judgement_cider", "video_meteor", "video_rouge_l"),
    "vad_reasoning": ("accuracy", "f1", "miou", "r05", "bleu_1", "meteor", "rougeL_f"),
    "vane": ("accuracy",),
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_frozen_runs_on_sample_split(task: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    argv = ["--method", "frozen", "--task", task, "--split", "sample", "--out", str(tmp_path),
            "--limit", "3", "--no-progress", "--json",
            "--method-arg", "answer_max_new_tokens=6"]
    if task == "hivau":
        argv += ["--level", "video"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for key in CASES[task]:
        assert key in result["metrics"], key
    assert result["counts"]["evaluated_samples"] == 3
    assert result["counts"]["queries"] >= 3 and result["counts"]["unanswered"] == 0
    assert 0 <= result["unparsed"] <= result["counts"]["queries"]
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    records = [json.loads(line) for line in (run / "predictions.jsonl").open()]
    assert len(records) == 3
    plan = result["protocol"]["frames"]
    for rec in records:
        assert rec["responses"] and all(isinstance(v, str) for v in rec["responses"].values())
        assert len(rec["frames"]["indices"]) <= plan["frames"]
        assert rec["frames"]["sampler"] == plan["sampler"]
        assert all(d["max_new_tokens"] <= 6 for d in rec["decoding"].values())
    config = json.loads((run / "config.json").read_text())
    assert config["protocol"]["task"] == task
