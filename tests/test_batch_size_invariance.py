"""Greedy predictions do not depend on the batch size (fp32, tiny model, ``hf`` engine).

A whole run is repeated at batch sizes 1, 4 and 16 (with the response cache off, so every
run really calls the model) and the prediction records must be identical: the frame scores of
``frozen`` on a frame task (windows batched together, P(yes) from log-probabilities) and the
raw answers on a language-side task.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.runner import run

BATCHES = (1, 4, 16)


def _records(run_dir: Path) -> dict[str, dict]:
    out = {}
    for line in (run_dir / "predictions.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["video_id"]] = rec
    return out


def _config(**kw: object) -> RunConfig:
    cfg = RunConfig(**kw)  # type: ignore[arg-type]
    if any(f.name == "cache" for f in dataclasses.fields(RunConfig)):
        cfg = dataclasses.replace(cfg, cache=False)  # type: ignore[call-arg]
    return cfg


@pytest.mark.parametrize("task,method_args", [
    ("ucf_crime", {}),
    ("vru_accident_qa", {"answer_max_new_tokens": 8}),
])
def test_predictions_identical_for_batch_1_4_16(tmp_path: Path, task: str,
                                                method_args: dict) -> None:
    results = {}
    for b in BATCHES:
        cfg = _config(method="frozen", task=task, split="sample", limit=2, batch_size=b,
                      out=str(tmp_path), run_name=f"b{b}", device="cpu", dtype="float32",
                      method_args=dict(method_args))
        res = run(cfg, progress=False)
        results[b] = (_records(res.run_dir), res.result["metrics"])
    ref_records, ref_metrics = results[1]
    assert len(ref_records) == 2
    for b in BATCHES[1:]:
        records, metrics = results[b]
        assert records == ref_records, f"batch {b} changed the predictions"
        assert metrics == ref_metrics
