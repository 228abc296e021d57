"""Comparative tables from the runs index (the data layer the Streamlit app will show).

One table per task: one row per finished run, the task's headline metrics as columns, and the
provenance needed to trust a row (model, engine, split, run directory). ``sample``-split runs are
plumbing checks on the bundled sample world and are left out unless asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.index import list_runs

METRIC_COLUMNS = ("roc_auc", "pr_auc", "average_precision")


def metric_columns(task: str) -> tuple[str, ...]:
    """The task's headline metrics (its ``headline`` attribute), frame metrics otherwise."""
    from harness.registry import TASKS, UnknownNameError

    try:
        cls = TASKS.get(task)
    except UnknownNameError:
        return METRIC_COLUMNS
    return tuple(getattr(cls, "headline", ())) or METRIC_COLUMNS


def task_table(runs_dir: Path | str, task: str, include_sample: bool = False,
               sort_by: str | None = None) -> list[dict[str, Any]]:
    """Rows ``{"method", "model", "engine", "split", "run", <metrics>...}`` of finished runs of
    ``task``, best ``sort_by`` (default: the first headline metric) first (runs without that
    metric last)."""
    columns = metric_columns(task)
    sort_by = sort_by or columns[0]
    rows = []
    for rec in list_runs(runs_dir, task=task):
        if rec["status"] != "done" or (rec["split"] == "sample" and not include_sample):
            continue
        metrics = rec["metrics"] or {}
        row = {"method": rec["method"], "model": rec["model"], "engine": rec["engine"],
               "split": rec["split"], "run": rec["run_dir"]}
        row.update({k: metrics.get(k) for k in columns})
        rows.append(row)
    rows.sort(key=lambda r: (r.get(sort_by) is None, -(r.get(sort_by) or 0.0)))
    return rows
