"""Altair charts of the leaderboard (pure: data frames in, chart specifications out).

Text in tooltips and labels comes from data fields, which Vega renders as text.
"""

from __future__ import annotations

import altair as alt
import pandas as pd


def roc_chart(curves: dict[str, pd.DataFrame]) -> alt.LayerChart | alt.FacetChart:
    """ROC curves, one colour per run: ``curves`` maps a run label to ``DataFrame(fpr, tpr)``.
    The diagonal is chance."""
    data = pd.concat([df.assign(run=name) for name, df in curves.items()], ignore_index=True)
    line = alt.Chart(data).mark_line().encode(
        x=alt.X("fpr:Q", title="false positive rate", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="true positive rate", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("run:N", title="run"), tooltip=["run", "fpr", "tpr"])
    chance = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    return alt.layer(chance, line).properties(title="ROC (pooled frames)", height=320)


def pr_chart(curves: dict[str, pd.DataFrame]) -> alt.Chart:
    """Precision-recall curves, one colour per run (``DataFrame(recall, precision)``)."""
    data = pd.concat([df.assign(run=name) for name, df in curves.items()], ignore_index=True)
    return alt.Chart(data).mark_line().encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("run:N", title="run"), tooltip=["run", "recall", "precision"],
    ).properties(title="Precision-recall (pooled frames)", height=320)


def timeline_chart(series: pd.DataFrame, intervals: pd.DataFrame, title: str
                   ) -> alt.LayerChart | alt.FacetChart:
    """Anomaly score over time (``series``: seconds, score) with the ground-truth anomalous
    intervals (``intervals``: start_s, end_s) shaded."""
    base = alt.Chart(series).mark_line(color="#1f77b4").encode(
        x=alt.X("seconds:Q", title="time (s)"),
        y=alt.Y("score:Q", title="anomaly score"), tooltip=["frame", "seconds", "score"])
    layers: list[alt.Chart] = []
    if len(intervals):
        layers.append(alt.Chart(intervals).mark_rect(opacity=0.25, color="#d62728").encode(
            x="start_s:Q", x2="end_s:Q", tooltip=["start", "end"]))
    layers.append(base)
    return alt.layer(*layers).properties(title=title, height=260)


def class_bars(per_class: pd.DataFrame) -> alt.Chart:
    """Grouped bars: one group per class, one bar per metric (``class, metric, value``)."""
    return alt.Chart(per_class).mark_bar().encode(
        x=alt.X("class:N", sort=None, title=None),
        xOffset="metric:N",
        y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
        color="metric:N", tooltip=["class", "metric", "value", "n_videos"],
    ).properties(title="Per class", height=300)
