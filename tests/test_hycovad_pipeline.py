"""The whole HyCoVAD pipeline through the CLI on the ComplexVAD sample split, with the tiny VLM
captioning and the tiny text LLM (``tiny-qwen2-lm`` on the ``hf`` engine) writing rules and
decisions; the ablation switches; the record's layout (every 10th frame scored and carried)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cli import main
from tasks.records import decode_scores

BASE = ["--method", "hycovad", "--task", "complexvad", "--split", "sample", "--limit", "3",
        "--no-progress", "--no-cache", "--json"]


def _latest_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if (p / "predictions.jsonl").is_file()]
    return max(runs, key=lambda p: p.stat().st_mtime)


def _run(capsys: pytest.CaptureFixture[str], out: Path, *args: str
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    capsys.readouterr()
    assert main([*BASE, "--out", str(out), *args]) == 0
    result = json.loads(capsys.readouterr().out)
    run_dir = _latest_run(out)
    records = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    return result, records


def test_pipeline_with_tiny_vlm_and_tiny_llm(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    result, records = _run(capsys, tmp_path, "--method-arg", "llm_engine=hf",
                           "--method-arg", "llm_model=tiny-qwen2-lm")
    assert len(records) == 3 and "roc_auc" in result["metrics"]
    for r in records:
        n, grid = r["num_frames"], np.arange(0, r["num_frames"], 10)
        scores = np.asarray(r["scores"])
        assert scores.shape == (n,)
        for g in grid:  # every 10th frame is scored, its score carried to the next nine
            assert np.all(scores[g:g + 10] == scores[g])
        assert r["grid"]["frames"] == len(grid) and len(r["grid"]["total_loss"]) == len(grid)
        # untrained proposer: the paper's absolute threshold 0.3, which every frame exceeds
        assert r["threshold"] == 0.3 and r["suspects"] == len(grid)
        req = r["llm_requests"]
        # tiny profile: 4 rule frames; refinement windows cover the whole grid
        assert req == {"captions": len(grid), "rules": 4, "aggregate": 1,
                       "decisions": len(grid)}
        assert len(r["validation"]["decisions"]) == len(grid)
        proposer = decode_scores(r["step_scores"]["proposer"], n)
        total = np.asarray(r["grid"]["total_loss"])
        assert np.allclose(proposer[grid], total / (1 + total))
        decisions = decode_scores(r["step_scores"]["decisions"], n)[grid]
        said_yes = [d["anomaly"] is True for d in r["validation"]["decisions"]]
        assert decisions.tolist() == [float(y) for y in said_yes]
    summary = result["method_summary"]
    assert summary["suspects"] == summary["grid_frames"] == sum(len(range(0, r["num_frames"],
                                                                          10)) for r in records)
    assert summary["requests_rules"] == 12 and summary["requests_aggregate"] == 3
    config = json.loads((_latest_run(tmp_path) / "config.json").read_text())
    assert config["method_settings"]["lengths"]["rule_frames"] == 4  # the tiny profile


def test_ablation_switches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SSL only (Table 2): the final scores are the proposer's
    res, recs = _run(capsys, tmp_path / "ssl", "--limit", "2", "--method-arg", "validator=false",
                     "--method-arg", "backbone=cnn_cvt", "--method-arg",
                     "proxy_tasks=irregularity,middle,jigsaw", "--method-arg", "level=frame")
    assert res["metrics"]["roc_auc"] == pytest.approx(res["steps"]["proposer"]["roc_auc"])
    assert all(r["llm_requests"] == {} and set(r["grid"]["per_task"]) ==
               {"irregularity", "middle", "jigsaw"} for r in recs)
    # no rules, no cleaning, short-term memory, explicit lengths over the tiny profile
    res, recs = _run(capsys, tmp_path / "abl", "--limit", "1", "--method-arg", "rules=false",
                     "--method-arg", "refine=false", "--method-arg", "flag_memory=3",
                     "--method-arg", "caption_max_new_tokens=8")
    r = recs[0]
    assert set(r["llm_requests"]) == {"captions", "decisions"}
    assert r["validation"]["rules_source"] == "off" and r["validation"]["refined"] == 0
    config = json.loads((_latest_run(tmp_path / "abl") / "config.json").read_text())
    assert config["method_settings"]["lengths"]["caption_max_new_tokens"] == 8


def test_bad_settings_name_the_setting() -> None:
    from methods.hycovad.method import HyCoVADMethod

    with pytest.raises(ValueError, match="threshold_mode"):
        HyCoVADMethod(None, threshold_mode="sometimes")
    with pytest.raises(ValueError, match="proxy_tasks"):
        HyCoVADMethod(None, proxy_tasks="middle,colour")
    with pytest.raises(ValueError, match="unknown setting"):
        HyCoVADMethod(None, thresold=0.3)
