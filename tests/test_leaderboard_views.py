"""The leaderboard's tables (``leaderboard.views``) on hand-built rows.

Every expected value below is written out by hand from the rows defined here (ranks with
pandas' ``average`` tie rule worked out on paper), never taken from the code under test.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from leaderboard.rows import Row
from leaderboard.views import META_COLUMNS, Filters, filter_rows, overview, task_table, to_csv


def _row(task: str, method: str, metrics: dict[str, float], *, source: str = "reported",
         backbone: str | None = None, params_b: float | None = None,
         trained: bool | None = None, split: str = "test", variant: str | None = None,
         ci95: dict[str, tuple[float, float]] | None = None, ref: str = "") -> Row:
    return Row(source=source, task=task, method=method, backbone=backbone, params_b=params_b,
               trained=trained, split=split, metrics=metrics, ci95=ci95 or {},
               variant=variant, ref=ref or f"{method}/{task}/{variant}/{split}")


# --------------------------------------------------------------------------- filter_rows

M7 = _row("ucf_crime", "M7", {"roc_auc": 0.80}, source="measured", backbone="Qwen2-VL-7B",
          params_b=7.0, trained=False)
R72 = _row("ucf_crime", "R72", {"roc_auc": 0.85}, source="reported", backbone="Qwen2-72B",
           params_b=72.0, trained=True)
S_NONE = _row("xd_violence", "S", {"pr_auc": 0.70}, source="submitted", backbone=None,
              params_b=None, trained=None)
SAMPLE = _row("ucf_crime", "M7", {"roc_auc": 0.99}, source="measured", backbone="Qwen2-VL-7B",
              params_b=7.0, trained=False, split="sample")
VARIANT = _row("ucf_crime", "R72", {"roc_auc": 0.81}, source="reported", backbone="Qwen2-72B",
               params_b=72.0, trained=True, variant="no retrieval")
SH = _row("shanghaitech", "M7", {"roc_auc": 0.60}, source="measured", backbone="Qwen2-VL-7B",
          params_b=7.0, trained=False)
ALL = [M7, R72, S_NONE, SAMPLE, VARIANT, SH]


def _ids(rows: list[Row]) -> set[str]:
    return {r.ref for r in rows}


def test_default_filters_hide_sample_split_only() -> None:
    assert _ids(filter_rows(ALL, Filters())) == _ids([M7, R72, S_NONE, VARIANT, SH])
    assert _ids(filter_rows(ALL, Filters(include_sample=True))) == _ids(ALL)


def test_filter_by_task() -> None:
    got = filter_rows(ALL, Filters(tasks=("ucf_crime",)))
    assert _ids(got) == _ids([M7, R72, VARIANT])
    got = filter_rows(ALL, Filters(tasks=("shanghaitech", "xd_violence")))
    assert _ids(got) == _ids([S_NONE, SH])


def test_filter_by_source() -> None:
    assert _ids(filter_rows(ALL, Filters(sources=("reported",)))) == _ids([R72, VARIANT])
    got = filter_rows(ALL, Filters(sources=("measured", "submitted")))
    assert _ids(got) == _ids([M7, S_NONE, SH])


def test_filter_by_backbone_with_none_bucket() -> None:
    assert _ids(filter_rows(ALL, Filters(backbones=("(none)",)))) == _ids([S_NONE])
    got = filter_rows(ALL, Filters(backbones=("Qwen2-VL-7B", "(none)")))
    assert _ids(got) == _ids([M7, S_NONE, SH])


def test_filter_by_type() -> None:
    assert _ids(filter_rows(ALL, Filters(types=("trained",)))) == _ids([R72, VARIANT])
    assert _ids(filter_rows(ALL, Filters(types=("training-free",)))) == _ids([M7, SH])
    assert _ids(filter_rows(ALL, Filters(types=("unknown",)))) == _ids([S_NONE])


def test_filter_by_size_keeps_unknown_only_when_asked() -> None:
    keep = filter_rows(ALL, Filters(size_b=(1.0, 10.0), keep_unknown_size=True))
    assert _ids(keep) == _ids([M7, SH, S_NONE])
    drop = filter_rows(ALL, Filters(size_b=(1.0, 10.0), keep_unknown_size=False))
    assert _ids(drop) == _ids([M7, SH])
    # closed range: both ends included
    assert _ids(filter_rows(ALL, Filters(size_b=(7.0, 72.0), keep_unknown_size=False))) == \
        _ids([M7, SH, R72, VARIANT])


def test_filter_variants() -> None:
    assert _ids(filter_rows(ALL, Filters(include_variants=False))) == _ids([M7, R72, S_NONE, SH])


def test_coverage_keeps_entries_present_on_every_selected_task() -> None:
    # entry "M7 [Qwen2-VL-7B]" has ucf_crime and shanghaitech rows; R72 only ucf_crime
    got = filter_rows(ALL, Filters(tasks=("ucf_crime", "shanghaitech"), coverage=True))
    assert _ids(got) == _ids([M7, SH])
    # the sample row does not give coverage when sample rows are hidden
    only_sample = [SAMPLE, SH]
    assert filter_rows(only_sample, Filters(tasks=("ucf_crime", "shanghaitech"),
                                            coverage=True)) == []
    # without a task selection: every task among the remaining rows is required
    got = filter_rows([M7, SH, R72], Filters(coverage=True))
    assert _ids(got) == _ids([M7, SH])
    # a variant is another entry: it does not inherit the main row's coverage
    got = filter_rows([R72, VARIANT, _row("xd_violence", "R72", {"pr_auc": 0.5},
                                          backbone="Qwen2-72B", ref="r72xd")],
                      Filters(tasks=("ucf_crime", "xd_violence"), coverage=True))
    assert _ids(got) == {R72.ref, "r72xd"}


# --------------------------------------------------------------------------- task_table

def _ucf_rows() -> list[Row]:
    return [
        _row("ucf_crime", "Low", {"roc_auc": 0.60, "pr_auc": 0.20, "n_videos": 290.0,
                                  "n_frames": 1000.0},
             source="measured", ci95={"roc_auc": (0.5769, 0.7213)}),
        _row("ucf_crime", "High", {"roc_auc": 0.90, "video_roc_auc": 0.95, "paper_only": 0.4},
             source="reported"),
        _row("ucf_crime", "NoAuc", {"pr_auc": 0.50}, source="submitted"),
        _row("ucf_crime", "Mid", {"roc_auc": 0.75, "pr_auc": 0.40}, source="reported"),
        _row("xd_violence", "Other", {"pr_auc": 0.99}),
    ]


def test_task_table_columns() -> None:
    df = task_table(_ucf_rows(), "ucf_crime")
    # ucf_crime's headline metrics first (roc_auc, pr_auc, average_precision), then declared
    # metrics some row has (video_roc_auc), then keys only papers report; counts are no column
    assert list(df.columns) == [
        *META_COLUMNS,
        "roc_auc", "roc_auc 95% CI", "pr_auc", "average_precision", "video_roc_auc",
        "paper_only", "citation", "date", "ref",
    ]
    assert len(df) == 4  # the xd_violence row is not in ucf_crime's table
    assert "n_videos" not in df.columns and "n_frames" not in df.columns
    low = df[df["method"] == "Low"].iloc[0]
    assert low["roc_auc 95% CI"] == "[0.5769, 0.7213]"
    assert (df[df["method"] != "Low"]["roc_auc 95% CI"] == "").all()
    assert low["source"] == "measured" and low["split"] == "test"


def test_task_table_unregistered_task_uses_its_keys() -> None:
    rows = [_row("shanghaitech", "A", {"roc_auc": 0.7, "n_videos": 3.0}),
            _row("shanghaitech", "B", {"pr_auc": 0.4, "roc_auc": 0.8})]
    df = task_table(rows, "shanghaitech")
    assert [c for c in df.columns if c not in (*META_COLUMNS, "citation", "date", "ref")] == \
        ["roc_auc", "pr_auc"]  # the usual frame metrics first, then the rest alphabetically
    # default sort: the first metric column, descending
    assert list(df["method"]) == ["B", "A"]


def test_task_table_sorting_missing_last() -> None:
    rows = _ucf_rows()
    df = task_table(rows, "ucf_crime")  # default: roc_auc, descending
    assert list(df["method"]) == ["High", "Mid", "Low", "NoAuc"]
    df = task_table(rows, "ucf_crime", sort_by="roc_auc", descending=False)
    assert list(df["method"]) == ["Low", "Mid", "High", "NoAuc"]
    df = task_table(rows, "ucf_crime", sort_by="pr_auc", descending=True)
    assert list(df["method"]) == ["NoAuc", "Mid", "Low", "High"]
    df = task_table(rows, "ucf_crime", sort_by="pr_auc", descending=False)
    assert list(df["method"]) == ["Low", "Mid", "NoAuc", "High"]
    assert math.isnan(df.iloc[-1]["pr_auc"])
    assert list(df.index) == [0, 1, 2, 3]


def test_task_table_drops_empty_interval_columns() -> None:
    rows = [r for r in _ucf_rows() if r.method != "Low"]
    df = task_table(rows, "ucf_crime")
    assert not any(c.endswith("95% CI") for c in df.columns)


# --------------------------------------------------------------------------- overview

def _overview_rows() -> list[Row]:
    qwen, intern = "Qwen2-VL-7B", "InternVL2-8B"
    return [
        # ucf_crime, headline roc_auc: A best 0.90 (two rows), B 0.90, C 0.80
        _row("ucf_crime", "A", {"roc_auc": 0.85, "pr_auc": 0.99}, backbone=qwen, ref="a1"),
        _row("ucf_crime", "A", {"roc_auc": 0.90}, backbone=qwen, ref="a2"),
        _row("ucf_crime", "B", {"roc_auc": 0.90}, trained=True, ref="b1"),
        _row("ucf_crime", "C", {"roc_auc": 0.80}, backbone=intern, ref="c1"),
        # xd_violence: no row has roc_auc, so pr_auc ranks: C 0.75, A 0.70, B 0.60
        _row("xd_violence", "A", {"pr_auc": 0.70}, backbone=qwen, ref="a3"),
        _row("xd_violence", "B", {"pr_auc": 0.60}, trained=True, ref="b2"),
        _row("xd_violence", "C", {"pr_auc": 0.75}, backbone=intern, ref="c2"),
        # shanghaitech (not registered): only D
        _row("shanghaitech", "D", {"roc_auc": 0.90}, source="submitted", trained=False,
             ref="d1"),
    ]


def test_overview_ranks_by_hand() -> None:
    df = overview(_overview_rows())
    a, b, c, d = "A [Qwen2-VL-7B]", "B", "C [InternVL2-8B]", "D"
    # coverage first (2 tasks before 1), then average rank ascending:
    # A (1.5 + 2) / 2 = 1.75, C (3 + 1) / 2 = 2.0, B (1.5 + 3) / 2 = 2.25, D 1.0 on one task
    assert list(df["entry"]) == [a, c, b, d]
    got = df.set_index("entry")
    assert got.loc[a, "ucf_crime rank"] == 1.5 and got.loc[b, "ucf_crime rank"] == 1.5
    assert got.loc[c, "ucf_crime rank"] == 3.0
    assert (got.loc[c, "xd_violence rank"], got.loc[a, "xd_violence rank"],
            got.loc[b, "xd_violence rank"]) == (1.0, 2.0, 3.0)
    assert got.loc[d, "shanghaitech rank"] == 1.0
    assert np.isnan(got.loc[a, "shanghaitech rank"]) and np.isnan(got.loc[d, "ucf_crime rank"])
    assert got["avg rank"].to_dict() == {a: 1.75, c: 2.0, b: 2.25, d: 1.0}
    assert got["tasks covered"].to_dict() == {a: 2, c: 2, b: 2, d: 1}
    # the best row of an entry is shown (A: 0.90, not 0.85)
    assert got.loc[a, "ucf_crime roc_auc"] == 0.90
    assert got.loc[c, "xd_violence pr_auc"] == 0.75
    assert got.loc[b, "type"] == "trained" and got.loc[d, "type"] == "training-free"
    assert got.loc[d, "source"] == "submitted"
    assert list(df.columns[:5]) == ["entry", "source", "type", "tasks covered", "avg rank"]
    assert {"ucf_crime roc_auc", "xd_violence pr_auc", "shanghaitech roc_auc"} <= set(df.columns)
    assert "xd_violence roc_auc" not in df.columns


def test_overview_restricted_tasks() -> None:
    df = overview(_overview_rows(), tasks=["ucf_crime"])
    assert list(df["entry"]) == ["A [Qwen2-VL-7B]", "B", "C [InternVL2-8B]"]
    assert list(df["avg rank"]) == [1.5, 1.5, 3.0]
    assert list(df["tasks covered"]) == [1, 1, 1]
    assert not any(c.startswith(("xd_violence", "shanghaitech")) for c in df.columns)


# --------------------------------------------------------------------------- to_csv

def _as_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Object cells with ``None`` for missing values: CSV writes ``""`` and ``NaN`` alike."""
    obj = df.astype(object).replace("", None)
    return obj.where(obj.notna(), None)


def test_to_csv_round_trip() -> None:
    rows = [*_ucf_rows(), _row("ucf_crime", "Sized", {"roc_auc": 0.7}, backbone="X-7B",
                               params_b=7.0, trained=True)]
    df = task_table(rows, "ucf_crime")
    back = pd.read_csv(io.BytesIO(to_csv(df)))
    assert list(back.columns) == list(df.columns)  # no index column
    pd.testing.assert_frame_equal(_as_cells(back), _as_cells(df), check_dtype=False)
    assert back.loc[back["method"] == "Low", "roc_auc 95% CI"].item() == "[0.5769, 0.7213]"
    assert back.loc[back["method"] == "Sized", "params (B)"].item() == 7.0


def test_to_csv_formula_guard_and_no_index() -> None:
    df = pd.DataFrame({"method": ["=HYPERLINK(\"http://x\")", "+cmd", "@SUM(A1)", "-2+3",
                                  "plain"],
                       "value": [0.5, -0.25, 0.0, 1.0, 2.0]})
    raw = to_csv(df).decode("utf-8")
    lines = raw.splitlines()
    assert lines[0] == "method,value"
    back = pd.read_csv(io.StringIO(raw))
    assert list(back["method"]) == ["'=HYPERLINK(\"http://x\")", "'+cmd", "'@SUM(A1)", "'-2+3",
                                    "plain"]
    # numbers are numbers, not guarded text
    assert list(back["value"]) == [0.5, -0.25, 0.0, 1.0, 2.0]
