"""Tables the leaderboard shows, as pure functions of :class:`~leaderboard.rows.Row` lists.

Everything here is pandas in, pandas out, so that the Streamlit app stays a thin layer and the
same tables can be tested, exported and printed without a browser:

* :func:`filter_rows`: the sidebar's filters (:class:`Filters`), coverage included;
* :func:`task_table`: one task, methods as rows, the task's metrics as columns, each with its
  95% interval as a ``"<metric> 95% CI"`` text column;
* :func:`overview`: one row per entry (method + backbone + variant) with its headline metric per
  task, the rank per task and the average rank over the tasks it covers;
* :func:`to_csv`: the CSV export of a shown table.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from leaderboard.rows import Row

TYPE_TRAINED, TYPE_FREE, TYPE_UNKNOWN = "trained", "training-free", "unknown"
META_COLUMNS = ("source", "method", "variant", "backbone", "params (B)", "type", "split")


def method_type(trained: bool | None) -> str:
    return TYPE_UNKNOWN if trained is None else (TYPE_TRAINED if trained else TYPE_FREE)


@dataclass(frozen=True)
class Filters:
    """What the sidebar selects; ``None`` means no restriction.

    Attributes:
        tasks: tasks to show (and to require under ``coverage``).
        sources: ``measured`` / ``reported`` / ``submitted``.
        backbones: backbone names (rows without one match ``"(none)"``).
        types: ``trained`` / ``training-free`` / ``unknown``.
        size_b: ``(lo, hi)`` parameter range in billions; rows of unknown size pass only when
            ``keep_unknown_size``.
        include_sample: show ``sample``-split runs (plumbing checks; hidden by default).
        include_variants: show ablation / setting rows (``Row.variant`` set).
        coverage: keep only entries with a row on every task of ``tasks``.
    """

    tasks: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    backbones: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    size_b: tuple[float, float] | None = None
    keep_unknown_size: bool = True
    include_sample: bool = False
    include_variants: bool = True
    coverage: bool = False


def filter_rows(rows: Sequence[Row], f: Filters) -> list[Row]:
    """The rows passing every filter of ``f`` (coverage last, over the other filters' result)."""
    out = []
    for r in rows:
        if f.tasks is not None and r.task not in f.tasks:
            continue
        if f.sources is not None and r.source not in f.sources:
            continue
        if f.backbones is not None and (r.backbone or "(none)") not in f.backbones:
            continue
        if f.types is not None and method_type(r.trained) not in f.types:
            continue
        if r.split == "sample" and not f.include_sample:
            continue
        if r.variant and not f.include_variants:
            continue
        if f.size_b is not None:
            if r.params_b is None:
                if not f.keep_unknown_size:
                    continue
            elif not (f.size_b[0] <= r.params_b <= f.size_b[1]):
                continue
        out.append(r)
    if f.coverage:
        wanted = set(f.tasks) if f.tasks is not None else {r.task for r in out}
        covered: dict[str, set[str]] = {}
        for r in out:
            covered.setdefault(r.entry, set()).add(r.task)
        out = [r for r in out if covered[r.entry] >= wanted]
    return out


@functools.cache
def _registered_tasks() -> frozenset[str]:
    """Task names, read once per process (listing entry points costs milliseconds, and the
    app asks for every table on every rerun)."""
    from harness.registry import TASKS

    return frozenset(TASKS.names())


def metric_columns(task: str, rows: Sequence[Row]) -> list[str]:
    """The task's metric columns: its headline metrics first, then every other metric key the
    task declares (or, for benchmarks the harness lacks, any key) that some row has."""
    from harness.registry import TASKS

    present = {k for r in rows if r.task == task for k in r.metrics}
    if task in _registered_tasks():
        cls: Any = TASKS.get(task)
        head = [k for k in cls.headline]
        pats = cls.metric_patterns()
        known = sorted(k for k in present if k not in head
                       and any(re.fullmatch(p, k) for p in pats))
        # keys only papers report (no harness counterpart) come last
        extra = sorted(k for k in present if k not in head and k not in known
                       and not _is_count(k))
        return head + known + extra
    first = [k for k in ("roc_auc", "pr_auc", "average_precision", "accuracy") if k in present]
    return first + sorted(k for k in present if k not in first and not _is_count(k))


def _is_count(key: str) -> bool:
    return key.startswith("n_") or key in ("missing_videos", "unparsed")


def _fmt_ci(ci: tuple[float, float] | None) -> str:
    if ci is None or not all(math.isfinite(x) for x in ci):
        return ""
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def task_table(rows: Sequence[Row], task: str, sort_by: str | None = None,
               descending: bool = True) -> pd.DataFrame:
    """One task's rows: :data:`META_COLUMNS`, each metric and its ``"<metric> 95% CI"``, then
    ``citation``, ``date`` and ``ref``; sorted by ``sort_by`` (default: the first metric
    column), rows without that metric last."""
    rows = [r for r in rows if r.task == task]
    columns = metric_columns(task, rows)
    records = []
    for r in rows:
        rec: dict[str, object] = {
            "source": r.source, "method": r.method, "variant": r.variant or "",
            "backbone": r.backbone or "", "params (B)": r.params_b,
            "type": method_type(r.trained), "split": r.split,
        }
        for c in columns:
            rec[c] = r.metrics.get(c)
            rec[f"{c} 95% CI"] = _fmt_ci(r.ci95.get(c))
        rec |= {"citation": r.citation or "", "date": r.date or "", "ref": r.ref}
        records.append(rec)
    cols = [*META_COLUMNS, *(x for c in columns for x in (c, f"{c} 95% CI")),
            "citation", "date", "ref"]
    df = pd.DataFrame.from_records(records, columns=cols)
    for c in columns:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    key = sort_by if sort_by in df.columns else (columns[0] if columns else None)
    if key is not None and len(df):
        df = df.sort_values(key, ascending=not descending, na_position="last", kind="stable")
    # drop interval columns no row fills (reported rows carry none)
    empty = [c for c in df.columns if c.endswith(" 95% CI") and not df[c].astype(bool).any()]
    return df.drop(columns=empty).reset_index(drop=True)


def headline_metric(task: str, rows: Sequence[Row]) -> str | None:
    """The metric a task is ranked by: its first headline metric some row has."""
    cols = metric_columns(task, rows)
    return next((c for c in cols if any(c in r.metrics for r in rows if r.task == task)), None)


def overview(rows: Sequence[Row], tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """Average rank across tasks.

    Per task, each entry's value is its best row on the task's headline metric (higher is
    better); entries are ranked 1 = best, ties sharing the mean rank (``pandas`` ``average``).
    ``avg rank`` is the mean over the tasks an entry has; ``tasks covered`` says how many,
    so that an entry ranked on one task is not mistaken for one ranked on all. Sorted by
    coverage (more first), then average rank.

    Returns:
        columns ``entry``, ``source``, ``type``, ``tasks covered``, ``avg rank`` and, per task,
        ``"<task> <metric>"`` and ``"<task> rank"``.
    """
    tasks = sorted({r.task for r in rows}) if tasks is None else list(tasks)
    df = pd.DataFrame({"entry": sorted({r.entry for r in rows if r.task in tasks})})
    meta = {r.entry: r for r in rows}
    df["source"] = [meta[e].source for e in df["entry"]]
    df["type"] = [method_type(meta[e].trained) for e in df["entry"]]
    rank_cols = []
    for task in tasks:
        metric = headline_metric(task, rows)
        if metric is None:
            continue
        best: dict[str, float] = {}
        for r in rows:
            v = r.metrics.get(metric)
            if r.task == task and v is not None and math.isfinite(v):
                best[r.entry] = max(v, best.get(r.entry, -math.inf))
        col = f"{task} {metric}"
        df[col] = df["entry"].map(best)
        df[f"{task} rank"] = df[col].rank(ascending=False, method="average")
        rank_cols.append(f"{task} rank")
    df["tasks covered"] = df[rank_cols].notna().sum(axis=1) if rank_cols else 0
    df["avg rank"] = df[rank_cols].mean(axis=1) if rank_cols else math.nan
    df = df[df["tasks covered"] > 0] if rank_cols else df.iloc[0:0]
    df = df.sort_values(["tasks covered", "avg rank"], ascending=[False, True], kind="stable")
    front = ["entry", "source", "type", "tasks covered", "avg rank"]
    return df[front + [c for c in df.columns if c not in front]].reset_index(drop=True)


def to_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV of a shown table (the filtered, sorted view), without the pandas index.
    Text cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR are prefixed with ``'`` so
    that a spreadsheet does not run them as formulas (numeric columns are left alone)."""
    def safe(x: object) -> object:
        if isinstance(x, str) and x[:1] in ("=", "+", "-", "@", "\t", "\r"):
            return "'" + x
        return x

    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(safe)
    return out.to_csv(index=False).encode("utf-8")
