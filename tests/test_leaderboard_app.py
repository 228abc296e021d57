"""The Streamlit app, driven headless by ``streamlit.testing.v1.AppTest``: tables, filters,
sorting, CSV export, the run view and the two-run comparison, on two real sample-world runs,
one submission and the paper-reported rows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.cli import main as cli

APP = str(Path(__file__).resolve().parent.parent / "leaderboard" / "app.py")
HTML_NAME = '<b>bold</b><script>alert(1)</script>'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("lb_runs")
    made = {}
    for method in ("frame_diff", "constant"):
        assert cli(["--method", method, "--task", "ucf_crime", "--split", "sample", "--out",
                    str(out), "--run-name", f"ucf-{method}", "--no-progress", "--no-cache"]) == 0
        made[method] = json.loads((out / f"ucf-{method}" / "metrics.json").read_text())
    sub = out / "sub.json"
    sub.write_text(json.dumps({
        "schema_version": 1, "task": "ucf_crime", "split": "test",
        "method": {"name": HTML_NAME, "backbone": "SubmittedVLM-7B", "parameters_b": 7.0,
                   "trained": True},
        "metrics": {"roc_auc": 0.8111, "pr_auc": 0.3333}}))
    assert cli(["submit", str(sub), "--runs", str(out)]) == 0
    return {"dir": out, "metrics": made}


def _app(runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **query: str) -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VAD_EVAL_RUNS", str(runs["dir"]))
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def _table(at: Any, task: str) -> pd.DataFrame:
    """The dataframe shown under the ``task`` subheader (the Tables tab)."""
    tab = at.tabs[1]
    heads = [h.value for h in tab.subheader]
    frames = tab.dataframe
    assert task in heads, heads
    return frames[heads.index(task)].value


def test_tables_hide_sample_runs_by_default_and_show_every_source(runs: dict[str, Any],
                                                                  monkeypatch: Any) -> None:
    at = _app(runs, monkeypatch)
    heads = [h.value for h in at.tabs[1].subheader]
    # reported rows bring the papers' benchmarks; ucf_crime is there with all three sources
    assert {"ucf_crime", "xd_violence", "complexvad", "vad_reasoning"} <= set(heads)
    ucf = _table(at, "ucf_crime")
    assert set(ucf["source"]) == {"reported", "submitted"}  # sample-split runs hidden
    at.checkbox(key="include_sample").check().run()
    ucf = _table(at, "ucf_crime")
    assert set(ucf["source"]) == {"measured", "reported", "submitted"}
    got = ucf.set_index("method").loc["frame_diff"]
    want = runs["metrics"]["frame_diff"]
    assert got["roc_auc"] == pytest.approx(want["metrics"]["roc_auc"])
    lo, hi = want["ci95"]["roc_auc"]
    assert got["roc_auc 95% CI"] == f"[{lo:.4f}, {hi:.4f}]"
    assert got["split"] == "sample" and got["type"] == "training-free"
    # a reported row carries its paper, table and row
    ref = ucf[ucf["source"] == "reported"]["ref"]
    assert ref.str.match(r"^copra Table 1: ").any()
    # the submitted HTML name is a plain string cell
    assert HTML_NAME in set(ucf["method"])


def test_filters_sources_types_backbone_size_and_coverage(runs: dict[str, Any],
                                                          monkeypatch: Any) -> None:
    at = _app(runs, monkeypatch, sample="1")
    at.multiselect(key="sources").set_value(["measured"]).run()
    for frame in at.tabs[1].dataframe:
        assert set(frame.value["source"]) == {"measured"}
    at.multiselect(key="sources").set_value(["measured", "reported", "submitted"])
    at.multiselect(key="types").set_value(["trained"]).run()
    ucf = _table(at, "ucf_crime")
    assert set(ucf["type"]) == {"trained"} and "frame_diff" not in set(ucf["method"])
    at.multiselect(key="types").set_value(["trained", "training-free", "unknown"])
    at.multiselect(key="backbones").set_value(["SubmittedVLM-7B"]).run()
    assert list(_table(at, "ucf_crime")["method"]) == [HTML_NAME]
    at.multiselect(key="backbones").set_value([])
    at.slider(key="size").set_value((7.5, 9.0))
    at.checkbox(key="keep_unknown").uncheck().run()
    sizes = _table(at, "ucf_crime")["params (B)"]
    assert len(sizes) and ((sizes >= 7.5) & (sizes <= 9.0)).all()
    # coverage: only entries with rows on both tasks (frame_diff ran on ucf_crime only)
    at.slider(key="size").set_value((0.0, at.slider(key="size").max))
    at.checkbox(key="keep_unknown").check()
    at.multiselect(key="tasks").set_value(["ucf_crime", "xd_violence"])
    at.checkbox(key="coverage").check().run()
    ucf, xd = _table(at, "ucf_crime"), _table(at, "xd_violence")
    entries = lambda df: set(zip(df["method"], df["backbone"], strict=True))  # noqa: E731
    assert entries(ucf) == entries(xd) and len(entries(ucf)) >= 5
    assert "frame_diff" not in set(ucf["method"])
    over = at.tabs[0].dataframe[0].value
    assert (over["tasks covered"] == 2).all()


def test_sorting_and_csv_export_of_the_filtered_view(runs: dict[str, Any],
                                                     monkeypatch: Any) -> None:
    at = _app(runs, monkeypatch, sample="1")
    at.multiselect(key="sources").set_value(["measured", "submitted"]).run()
    at.selectbox(key="sort_ucf_crime").set_value("pr_auc")
    at.toggle(key="desc_ucf_crime").set_value(False).run()
    shown = _table(at, "ucf_crime")
    vals = shown["pr_auc"].to_numpy()
    assert list(vals) == sorted(vals)
    exported = pd.read_csv(io.BytesIO(at.session_state["export_ucf_crime"]))
    assert list(exported["method"]) == list(shown["method"])
    assert set(exported["source"]) == {"measured", "submitted"}
    np.testing.assert_allclose(exported["pr_auc"], shown["pr_auc"])
    assert "run" not in exported.columns and "ref" in exported.columns
    names = [b.label for b in at.tabs[1].download_button]
    assert "Download ucf_crime (CSV)" in names
    over = pd.read_csv(io.BytesIO(at.session_state["export_overview"]))
    assert list(over["entry"]) == list(at.tabs[0].dataframe[0].value["entry"])


def test_run_view_links_provenance_and_plots(runs: dict[str, Any], monkeypatch: Any) -> None:
    at = _app(runs, monkeypatch, sample="1", run="ucf-constant")
    assert at.selectbox(key="run").value == "ucf-constant"
    prov = json.loads(at.tabs[2].json[0].value)
    for key in ("commit", "dataset_fingerprint", "label_convention", "engine", "batch_size",
                "date", "resolved_config"):
        assert key in prov
    assert prov["label_convention"] == "inclusive"
    # per-class bars, ROC, PR and the timeline of a video
    charts = [n for n in at.tabs[2].get("vega_lite_chart")]
    assert len(charts) == 4
    assert at.selectbox(key="video").value  # an anomalous video is preselected
    # the link column of the tables points at the run
    ucf = _table(at, "ucf_crime")
    assert "?run=ucf-constant" in set(ucf["run"].dropna())


def test_two_run_comparison_paired_bootstrap(runs: dict[str, Any], monkeypatch: Any) -> None:
    at = _app(runs, monkeypatch, sample="1")
    at.selectbox(key="cmp_task").set_value("ucf_crime")
    at.selectbox(key="cmp_a").set_value("ucf-frame_diff")
    at.selectbox(key="cmp_b").set_value("ucf-constant")
    at.number_input(key="cmp_n").set_value(300).run()
    d = at.session_state["paired"]
    fd = runs["metrics"]["frame_diff"]["metrics"]["roc_auc"]
    assert d.a == pytest.approx(fd) and d.b == pytest.approx(0.5)  # a constant scores 0.5
    assert d.diff == pytest.approx(fd - 0.5)
    assert d.lo <= d.diff <= d.hi and d.resamples == 300 and d.n_videos == 16
    side = at.tabs[3].dataframe[0].value
    assert list(side["run"]) == ["A", "B"]
    assert list(side["ref"]) == ["ucf-frame_diff", "ucf-constant"]
    texts = [t.value for t in at.tabs[3].text]
    assert any("paired bootstrap interval of A - B" in t for t in texts)


def test_run_whose_directory_is_gone_shows_a_message(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import index

    cfg = {"task": "ucf_crime", "method": "frozen", "model": "m", "engine": "hf",
           "split": "test"}
    index.register_run(tmp_path, tmp_path / "gone", cfg, status="done",
                       metrics={"roc_auc": 0.7, "pr_auc": 0.3})
    at = _app({"dir": tmp_path}, monkeypatch, run="gone")
    texts = [t.value for t in at.tabs[2].text]
    assert any("No plots:" in t and "gone" in t for t in texts)
