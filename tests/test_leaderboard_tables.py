"""Measured rows as the leaderboard reads them from the runs index (no run files needed)."""

from __future__ import annotations

from pathlib import Path

from harness import index
from leaderboard.rows import measured_rows
from leaderboard.views import Filters, filter_rows, task_table


def _add(runs: Path, name: str, method: str, split: str, auc: float | None, status: str = "done"
         ) -> None:
    cfg = {"task": "ucf_crime", "method": method, "model": "m", "engine": "hf", "split": split}
    index.register_run(runs, runs / name, cfg, status=status,
                       metrics=None if auc is None else {"roc_auc": auc, "pr_auc": auc / 2})


def test_rows_sorted_and_filtered(tmp_path: Path) -> None:
    _add(tmp_path, "a", "frozen", "test", 0.81)
    _add(tmp_path, "b", "copra", "test", 0.87)
    _add(tmp_path, "c", "frozen", "sample", 0.99)
    _add(tmp_path, "d", "x", "test", None, status="running")
    rows = measured_rows(tmp_path)
    assert sorted(r.ref for r in rows) == ["a", "b", "c"]  # the running run is not a result
    df = task_table(filter_rows(rows, Filters()), "ucf_crime")
    assert list(df["method"]) == ["copra", "frozen"]
    assert df["pr_auc"].iloc[0] == 0.435
    assert list(df["ref"]) == ["b", "a"]
    shown = task_table(filter_rows(rows, Filters(include_sample=True)), "ucf_crime")
    assert len(shown) == 3 and shown["split"].iloc[0] == "sample"


def test_no_index_no_rows(tmp_path: Path) -> None:
    assert measured_rows(tmp_path / "absent") == []
