"""The per-task table the leaderboard reads from the runs index."""

from __future__ import annotations

from pathlib import Path

from harness import index
from leaderboard.tables import task_table


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
    rows = task_table(tmp_path, "ucf_crime")
    assert [r["method"] for r in rows] == ["copra", "frozen"]
    assert rows[0]["pr_auc"] == 0.435
    assert len(task_table(tmp_path, "ucf_crime", include_sample=True)) == 3
