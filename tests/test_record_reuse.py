"""A re-run reuses whole prediction records from the response cache, and only when it may."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.cache_keys as cache_keys
from harness.config import RunConfig
from harness.runner import run


def _run(tmp: Path, name: str, **kw: object) -> tuple[dict[str, dict], dict]:
    cfg = RunConfig(**{"method": "frozen", "task": "ucf_crime", "split": "sample", "limit": 2,
                       "out": str(tmp), "run_name": name, "device": "cpu", **kw})  # type: ignore[arg-type]
    res = run(cfg, progress=False)
    records = {json.loads(line)["video_id"]: json.loads(line)
               for line in (res.run_dir / "predictions.jsonl").read_text().splitlines()}
    info = json.loads((res.run_dir / "run_info.json").read_text())
    return records, info["cache"]


def test_rerun_reuses_records_without_model_calls(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAD_EVAL_CACHE", str(tmp_path / "cache"))
    first, c1 = _run(tmp_path, "a")
    assert c1["record_misses"] == 2 and c1["model_calls"] > 0
    second, c2 = _run(tmp_path, "b")
    assert second == first
    assert c2["record_hits"] == 2 and c2["model_calls"] == 0 and c2["embed_calls"] == 0
    # another method setting: records are recomputed (the responses may still be cached)
    _, c3 = _run(tmp_path, "c", method_args={"smooth_sigma": 5.0})
    assert c3["record_hits"] == 0 and c3["record_misses"] == 2
    # a code change makes stored records unreachable
    monkeypatch.setattr(cache_keys, "_CODE_DIGEST", "another-code-version")
    _, c4 = _run(tmp_path, "d")
    assert c4["record_hits"] == 0
    # --no-cache: nothing is looked up
    _, c5 = _run(tmp_path, "e", cache=False)
    assert c5["record_hits"] == 0 and c5["record_misses"] == 0


def test_sampled_protocols_are_never_reused(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Vad-Reasoning asks for temperature 0.1: its records are predicted every time."""
    monkeypatch.setenv("VAD_EVAL_CACHE", str(tmp_path / "cache"))
    kw = {"task": "vad_reasoning", "method_args": {"answer_max_new_tokens": 4}}
    _run(tmp_path, "a", **kw)
    _, c2 = _run(tmp_path, "b", **kw)
    assert c2["record_hits"] == 0 and c2["record_misses"] == 0 and c2["model_calls"] > 0
