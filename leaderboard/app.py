"""The vad-eval leaderboard (Streamlit): ``vad-eval leaderboard [--runs RUNS_DIR]``.

Reads the run index of ``$VAD_EVAL_RUNS`` (default ``runs``), the paper-reported rows of
``leaderboard/reported.yaml`` and the submissions in the index. Tabs: an overview with the
average rank across tasks, one table per task, one run (provenance, ROC/PR curves, score
timelines against the ground truth, per-class bars), and a comparison of two runs with the
paired bootstrap difference of their headline metric.

Safety: every string that comes from a run, a paper or a submission is shown through
``st.dataframe``, ``st.json``, ``st.text``, ``st.code`` or a widget label, which render text;
none goes through Markdown or HTML. The tables and views are computed in
:mod:`leaderboard.views`, :mod:`leaderboard.run_data` and :mod:`leaderboard.compare`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from leaderboard import charts
from leaderboard.compare import CURVE_METRICS, paired_bootstrap
from leaderboard.rows import SOURCES, Row, all_rows
from leaderboard.run_data import (
    RunDataError,
    curves,
    interval_frame,
    load_traces,
    per_class,
    read_metrics,
    timeline,
)
from leaderboard.views import (
    TYPE_FREE,
    TYPE_TRAINED,
    TYPE_UNKNOWN,
    Filters,
    filter_rows,
    headline_metric,
    overview,
    task_table,
    to_csv,
)

RUNS_DIR = Path(os.environ.get("VAD_EVAL_RUNS", "runs"))


def _stamp(runs_dir: Path) -> float:
    """Changes whenever the index is written (the WAL file grows or is checkpointed)."""
    stamps = [p.stat().st_mtime_ns for p in (runs_dir / "index.sqlite",
                                            runs_dir / "index.sqlite-wal") if p.exists()]
    return float(sum(stamps))


@st.cache_resource(max_entries=4)
def _rows(runs_dir: str, stamp: float) -> list[Row]:
    return all_rows(runs_dir)


@st.cache_resource(max_entries=8)
def _traces(run_dir: str, stamp: float) -> list:
    return load_traces(run_dir)


def _query_list(name: str, allowed: list[str]) -> list[str]:
    """A comma-separated query parameter (``?sources=measured,submitted``) restricted to
    ``allowed``; all of ``allowed`` when absent, so that a filtered view can be linked."""
    raw = st.query_params.get(name)
    if not raw:
        return allowed
    picked = [x for x in raw.split(",") if x in allowed]
    return picked or allowed


@st.cache_resource(max_entries=16)
def _paired(run_a: str, run_b: str, metric: str, n: int, seed: int, stamp: float) -> Any:
    """Cached: every widget change reruns the script, and a UCF-sized paired bootstrap takes
    seconds."""
    return paired_bootstrap(_traces(run_a, stamp), _traces(run_b, stamp), metric, n=n,
                            seed=seed)


def _sidebar(rows: list[Row]) -> Filters:
    sb = st.sidebar
    sb.header("Filters")
    tasks = sorted({r.task for r in rows})
    sel_tasks = sb.multiselect("Tasks", tasks, default=_query_list("tasks", tasks), key="tasks")
    sources = sb.multiselect("Source", list(SOURCES),
                             default=_query_list("sources", list(SOURCES)), key="sources")
    types = sb.multiselect("Method type", [TYPE_TRAINED, TYPE_FREE, TYPE_UNKNOWN],
                           default=[TYPE_TRAINED, TYPE_FREE, TYPE_UNKNOWN], key="types")
    backbones = sorted({r.backbone or "(none)" for r in rows})
    sel_bb = sb.multiselect("Backbone (empty = all)", backbones, default=[], key="backbones")
    sizes = [r.params_b for r in rows if r.params_b is not None]
    size = None
    keep_unknown = True
    if sizes:
        hi = float(max(max(sizes), 1.0))
        size = sb.slider("Size (billions of parameters)", 0.0, hi, (0.0, hi), key="size")
        keep_unknown = sb.checkbox("Keep rows of unknown size", value=True, key="keep_unknown")
    include_sample = sb.checkbox("Show sample-split runs (plumbing checks)",
                                 value=st.query_params.get("sample") == "1",
                                 key="include_sample")
    variants = sb.checkbox("Show ablation / variant rows", value=False, key="variants")
    coverage = sb.checkbox("Only methods with results on all selected tasks", value=False,
                           key="coverage")
    return Filters(tasks=tuple(sel_tasks), sources=tuple(sources), types=tuple(types),
                   backbones=tuple(sel_bb) or None, size_b=size, keep_unknown_size=keep_unknown,
                   include_sample=include_sample, include_variants=variants, coverage=coverage)


def _download(label: str, df, name: str, key: str) -> None:
    data = to_csv(df)
    st.session_state[f"export_{key}"] = data  # what the button serves (read by tests)
    st.download_button(label, data, file_name=name, mime="text/csv", key=f"dl_{key}")


def _overview(rows: list[Row], f: Filters) -> None:
    st.subheader("Average rank across tasks")
    st.caption("Per task, each entry's best row on the task's headline metric is ranked "
               "(1 = best); 'avg rank' averages over the tasks the entry covers. Use the "
               "coverage filter to compare only entries present on every selected task.")
    df = overview(rows, list(f.tasks or ()))
    st.dataframe(df, hide_index=True, width="stretch")
    _download("Download overview (CSV)", df, "overview.csv", "overview")


def _tables(rows: list[Row], f: Filters) -> None:
    tasks = [t for t in (f.tasks or ()) if any(r.task == t for r in rows)]
    if not tasks:
        st.info("No rows match the filters.")
    for task in tasks:
        st.subheader(task)
        df = task_table(rows, task)
        metrics = [c for c in df.columns if c not in ("source", "method", "variant", "backbone",
                                                      "params (B)", "type", "split", "citation",
                                                      "date", "ref")
                   and not c.endswith(" 95% CI")]
        c1, c2 = st.columns([3, 1])
        sort_by = c1.selectbox("Sort by", metrics + ["params (B)", "method", "date"],
                               key=f"sort_{task}")
        desc = c2.toggle("Descending", value=True, key=f"desc_{task}")
        df = task_table(rows, task, sort_by=sort_by, descending=desc)
        measured = df["source"] == "measured"
        df.insert(len(df.columns), "run", ["?run=" + ref if m else None
                                           for ref, m in zip(df["ref"], measured, strict=True)])
        st.dataframe(df, hide_index=True, width="stretch", key=f"table_{task}",
                     column_config={"run": st.column_config.LinkColumn(
                         "run", display_text=r"\?run=(.*)",
                         help="open the run: provenance and plots (Run tab)")})
        _download(f"Download {task} (CSV)", df.drop(columns=["run"]), f"{task}.csv", task)


def _run_label(r: Row) -> str:
    return f"{r.ref}"


def _run_tab(rows: list[Row]) -> None:
    measured = [r for r in rows if r.source == "measured"]
    if not measured:
        st.info("No measured runs match the filters.")
        return
    refs = [r.ref for r in measured]
    wanted = st.query_params.get("run")
    idx = refs.index(wanted) if wanted in refs else 0
    ref = st.selectbox("Run", refs, index=idx, key="run")
    row = next(r for r in measured if r.ref == ref)
    st.text(f"{row.method} on {row.task} ({row.split}), backbone {row.backbone or '-'}")
    st.json(row.provenance, expanded=False)
    st.dataframe(task_table([row], row.task), hide_index=True, width="stretch",
                 key="run_metrics")
    try:  # the run directory may have been moved or deleted since it was indexed
        result = read_metrics(row.provenance["run_dir"])
        bars = per_class(row.provenance["run_dir"])
    except RunDataError as exc:
        st.text(f"No plots: {exc}")
        return
    if len(bars):
        st.altair_chart(charts.class_bars(bars), width="stretch")
    try:  # frame tasks only; labels re-read from the annotation files
        traces = _traces(row.provenance["run_dir"], _stamp(RUNS_DIR))
    except RunDataError as exc:
        st.text(f"No curves: {exc}")
        traces = []
    if not traces:
        return
    c = curves(traces)
    left, right = st.columns(2)
    left.altair_chart(charts.roc_chart({ref: c["roc"]}), width="stretch")
    right.altair_chart(charts.pr_chart({ref: c["pr"]}), width="stretch")
    ids = [t.video_id for t in traces]
    default = next((i for i, t in enumerate(traces) if t.intervals), 0)
    vid = st.selectbox("Video", ids, index=default, key="video")
    trace = traces[ids.index(vid)]
    st.altair_chart(charts.timeline_chart(timeline(trace), interval_frame(trace),
                                          f"{vid} ({trace.category})"), width="stretch")
    if result.get("steps"):
        st.caption("Metrics after each post-processing step")
        st.json(result["steps"], expanded=False)


def _compare_tab(rows: list[Row]) -> None:
    measured = [r for r in rows if r.source == "measured"]
    tasks = sorted({r.task for r in measured})
    if not tasks:
        st.info("No measured runs match the filters.")
        return
    task = st.selectbox("Task", tasks, key="cmp_task")
    refs = [r.ref for r in measured if r.task == task]
    if len(refs) < 2:
        st.info(f"Comparing needs two runs of {task}; there is {len(refs)}.")
        return
    c1, c2 = st.columns(2)
    ref_a = c1.selectbox("Run A", refs, index=0, key="cmp_a")
    ref_b = c2.selectbox("Run B", refs, index=1, key="cmp_b")
    ra = next(r for r in measured if r.ref == ref_a)
    rb = next(r for r in measured if r.ref == ref_b)
    side = task_table([ra, rb], task)
    side = side.set_index("ref").loc[[ref_a, ref_b]].reset_index()  # A first, then B
    side.insert(0, "run", ["A", "B"])
    st.dataframe(side, hide_index=True, width="stretch", key="cmp_table")
    metric = headline_metric(task, [ra, rb])
    if metric not in CURVE_METRICS:
        st.text(f"The paired bootstrap covers frame metrics ({', '.join(CURVE_METRICS)}); "
                f"{task}'s headline metric is {metric}.")
        return
    n = st.number_input("Bootstrap resamples", 100, 10000, 1000, step=100, key="cmp_n")
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="cmp_seed")
    stamp = _stamp(RUNS_DIR)
    try:
        ta = _traces(ra.provenance["run_dir"], stamp)
        tb = _traces(rb.provenance["run_dir"], stamp)
        d = _paired(ra.provenance["run_dir"], rb.provenance["run_dir"], metric, int(n),
                    int(seed), stamp)
    except RunDataError as exc:
        st.text(f"No paired comparison: {exc}")
        return
    st.session_state["paired"] = d
    m1, m2, m3 = st.columns(3)
    m1.metric(f"A {metric}", f"{d.a:.4f}")
    m2.metric(f"B {metric}", f"{d.b:.4f}")
    m3.metric(f"A - B ({d.n_videos} videos)", f"{d.diff:+.4f}",
              help=f"{int(d.level * 100)}% paired bootstrap interval [{d.lo:+.4f}, {d.hi:+.4f}]"
                   f" over {d.resamples} video resamples; share of resamples with A - B <= 0:"
                   f" {d.p_not_better:.3f}")
    st.text(f"{int(d.level * 100)}% paired bootstrap interval of A - B: "
            f"[{d.lo:+.4f}, {d.hi:+.4f}]; P(A - B <= 0) = {d.p_not_better:.3f} "
            f"({d.resamples} resamples over {d.n_videos} common videos, seed {d.seed})")
    ca, cb = curves(ta), curves(tb)
    left, right = st.columns(2)
    left.altair_chart(charts.roc_chart({"A": ca["roc"], "B": cb["roc"]}), width="stretch")
    right.altair_chart(charts.pr_chart({"A": ca["pr"], "B": cb["pr"]}), width="stretch")


def main() -> None:
    st.set_page_config(page_title="vad-eval leaderboard", layout="wide")
    st.title("vad-eval leaderboard")
    rows = _rows(str(RUNS_DIR), _stamp(RUNS_DIR))
    st.caption(f"Runs: {RUNS_DIR.resolve()}. Measured rows come from this index; reported rows "
               "from the seed papers' tables (leaderboard/reported.yaml); submitted rows from "
               "`vad-eval submit`.")
    f = _sidebar(rows)
    shown = filter_rows(rows, f)
    tabs = st.tabs(["Overview", "Tables", "Run", "Compare"])
    with tabs[0]:
        _overview(shown, f)
    with tabs[1]:
        _tables(shown, f)
    with tabs[2]:
        _run_tab(shown)
    with tabs[3]:
        _compare_tab(shown)


main()
