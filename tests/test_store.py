"""Run store: durable appends, torn-tail recovery, resume checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.store import PREDICTIONS, RunStore, RunStoreError


def test_append_and_read(tmp_path: Path) -> None:
    st = RunStore(tmp_path / "r")
    st.open({"task": "t"}, resume=False)
    st.append_prediction({"video_id": "a", "scores": [0.1]})
    st.append_prediction({"video_id": "b", "scores": [0.2]})
    assert set(st.predictions()) == {"a", "b"}
    with pytest.raises(RunStoreError, match="pass --resume"):
        RunStore(tmp_path / "r").open({"task": "t"}, resume=False)


def test_torn_tail_is_cut_on_resume(tmp_path: Path) -> None:
    st = RunStore(tmp_path / "r")
    st.open({"task": "t"}, resume=False)
    st.append_prediction({"video_id": "a", "scores": [0.1]})
    with (tmp_path / "r" / PREDICTIONS).open("a") as fh:
        fh.write('{"video_id": "b", "sco')  # a write interrupted by SIGKILL
    with pytest.raises(RunStoreError, match="not a JSON record"):
        st.predictions()
    st2 = RunStore(tmp_path / "r")
    st2.open({"task": "t"}, resume=True)
    assert st2.finished() == {"a"}
    st2.append_prediction({"video_id": "b", "scores": [0.3]})
    lines = (tmp_path / "r" / PREDICTIONS).read_text().splitlines()
    assert [json.loads(x)["video_id"] for x in lines] == ["a", "b"]


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    RunStore(tmp_path / "r").open({"task": "t", "seed": 0}, resume=False)
    with pytest.raises(RunStoreError, match="'seed' differs"):
        RunStore(tmp_path / "r").open({"task": "t", "seed": 1}, resume=True,
                                      compare=("task", "seed"))


def test_duplicates_are_reported(tmp_path: Path) -> None:
    st = RunStore(tmp_path / "r")
    st.open({}, resume=False)
    st.append_prediction({"video_id": "a"})
    st.append_prediction({"video_id": "a"})
    with pytest.raises(RunStoreError, match="duplicate record for 'a'"):
        st.predictions()


def test_metrics_are_strict_json(tmp_path: Path) -> None:
    st = RunStore(tmp_path / "r")
    st.open({}, resume=False)
    st.write_metrics({"metrics": {"roc_auc": float("nan"), "n": 3}})
    assert st.metrics() == {"metrics": {"roc_auc": None, "n": 3}}
