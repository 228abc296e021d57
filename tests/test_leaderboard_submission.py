"""Result-file submissions: loading, every rejection, indexing once, the published schema, the
CLI. Each rejection must name the file and the offending field."""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness import index
from harness.cli import main
from harness.registry import TASKS
from leaderboard.rows import REPORTED_PATH
from leaderboard.submission import (
    MAX_BYTES,
    SCHEMA_PATH,
    SubmissionError,
    load_submission,
    schema_text,
    submission_schema,
    submit,
)

VALID: dict[str, Any] = {
    "schema_version": 1,
    "task": "ucf_crime",
    "split": "test",
    "method": {"name": "MyVAD", "backbone": "Qwen2-VL-7B", "parameters_b": 7.0,
               "trained": False, "url": "https://example.org/myvad", "citation": "Me et al."},
    "metrics": {"roc_auc": 0.84, "pr_auc": 0.31},
    "ci95": {"roc_auc": [0.82, 0.86]},
    "n_videos": 290,
    "commit": "0123abcd",
    "date": "2026-11-21",
    "notes": "test",
}


def _write(tmp_path: Path, obj: Any = None, *, text: str | None = None,
           data: bytes | None = None, name: str = "sub.json") -> Path:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    else:
        path.write_text(text if text is not None else json.dumps(obj), encoding="utf-8")
    return path


def _changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = copy.deepcopy(VALID)
    change(obj)
    return obj


def _rejects(path: Path, *fragments: str) -> str:
    with pytest.raises(SubmissionError) as err:
        load_submission(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


# --------------------------------------------------------------------------- valid file

def test_valid_submission_loads_and_is_indexed_once(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    assert load_submission(path) == VALID
    runs = tmp_path / "runs"
    sid, added = submit(path, runs)
    assert added is True
    assert re.fullmatch(r"[0-9a-f]{16}", sid)
    sid2, added2 = submit(path, runs)
    assert (sid2, added2) == (sid, False)
    subs = index.list_submissions(runs)
    assert len(subs) == 1
    assert subs[0]["submission_id"] == sid
    assert subs[0]["payload"] == json.loads(path.read_text())


def test_same_content_other_formatting_is_the_same_submission(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a = _write(tmp_path, VALID, name="a.json")
    b = _write(tmp_path, text=json.dumps(VALID, indent=4, sort_keys=True), name="b.json")
    assert submit(a, runs)[1] is True
    assert submit(b, runs)[1] is False
    assert len(index.list_submissions(runs)) == 1


# --------------------------------------------------------------------------- rejections

def test_unknown_task(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o.update(task="shanghaitech")))
    _rejects(path, "task", "shanghaitech")


def test_module_attr_task_is_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    TASKS.names()  # built-in task modules loaded before the guard goes up
    real = importlib.import_module
    asked: list[str] = []

    def guarded(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "os" or name.startswith("os."):
            asked.append(name)
            raise AssertionError(f"the registry was asked to import {name!r}")
        return real(name, *args, **kwargs)

    def no_cwd_import(name: str) -> Any:
        asked.append(name)
        raise AssertionError(f"the registry was asked to import {name!r}")

    monkeypatch.setattr(importlib, "import_module", guarded)
    monkeypatch.setattr("harness.registry._import_from_cwd", no_cwd_import)
    path = _write(tmp_path, _changed(lambda o: o.update(task="os:system")))
    _rejects(path, "field task", "os:system")
    assert asked == []


def test_unknown_metric_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["metrics"].update(auc_at_5=0.5)))
    _rejects(path, "metrics.auc_at_5")


def test_metric_out_of_range(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["metrics"].update(roc_auc=1.2)))
    _rejects(path, "metrics.roc_auc", "1.2")
    path = _write(tmp_path, _changed(lambda o: o["metrics"].update(pr_auc=-0.01)))
    _rejects(path, "metrics.pr_auc")


def test_hivau_cider_range(tmp_path: Path) -> None:
    base = {"schema_version": 1, "task": "hivau", "split": "test", "method": {"name": "x"}}
    path = _write(tmp_path, {**base, "metrics": {"clip_cider": 11}})
    _rejects(path, "metrics.clip_cider")
    ok = _write(tmp_path, {**base, "metrics": {"clip_cider": 5.0, "clip_bleu_4": 0.2}},
                name="ok.json")
    assert load_submission(ok)["metrics"]["clip_cider"] == 5.0
    # BLEU stays a fraction on the same task
    path = _write(tmp_path, {**base, "metrics": {"clip_bleu_4": 5.0}}, name="bleu.json")
    _rejects(path, "metrics.clip_bleu_4")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals(tmp_path: Path, literal: str) -> None:
    text = json.dumps(VALID).replace('"roc_auc": 0.84', f'"roc_auc": {literal}')
    assert literal in text
    path = _write(tmp_path, text=text)
    _rejects(path, "metrics.roc_auc", literal)


def test_non_finite_in_interval(tmp_path: Path) -> None:
    text = json.dumps(VALID).replace("[0.82, 0.86]", "[0.82, Infinity]")
    path = _write(tmp_path, text=text)
    _rejects(path, "ci95.roc_auc", "Infinity")


def test_repeated_key(tmp_path: Path) -> None:
    text = json.dumps(VALID).replace('"pr_auc": 0.31', '"pr_auc": 0.31, "roc_auc": 0.99')
    path = _write(tmp_path, text=text)
    _rejects(path, "roc_auc", "twice")


def test_file_too_large(tmp_path: Path) -> None:
    obj = _changed(lambda o: o.update(notes="x" * MAX_BYTES))
    path = _write(tmp_path, obj)
    assert path.stat().st_size > MAX_BYTES
    _rejects(path, str(MAX_BYTES))


def test_not_json(tmp_path: Path) -> None:
    _rejects(_write(tmp_path, text='{"task": "ucf_crime",'), "not JSON")


def test_not_utf8(tmp_path: Path) -> None:
    data = json.dumps(VALID).replace("MyVAD", "My\u00e9VAD").encode("latin-1")
    _rejects(_write(tmp_path, data=data), "UTF-8")


def test_missing_method_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["method"].pop("name")))
    _rejects(path, "field method", "'name'")


def test_method_name_too_long(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["method"].update(name="x" * 121)))
    _rejects(path, "method.name")
    ok = _write(tmp_path, _changed(lambda o: o["method"].update(name="x" * 120)), name="ok.json")
    assert load_submission(ok)["method"]["name"] == "x" * 120


def test_extra_top_level_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o.update(score_file="/etc/passwd")))
    _rejects(path, "score_file")


def test_interval_lo_above_hi(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["ci95"].update(roc_auc=[0.9, 0.8])))
    _rejects(path, "ci95.roc_auc")


def test_interval_outside_range(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["ci95"].update(roc_auc=[0.8, 1.1])))
    _rejects(path, "ci95.roc_auc")


def test_interval_for_metric_not_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["ci95"].update(average_precision=[0.1, 0.2])))
    _rejects(path, "ci95.average_precision")


def test_bool_where_number_expected(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["metrics"].update(roc_auc=True)))
    _rejects(path, "metrics.roc_auc")
    path = _write(tmp_path, _changed(lambda o: o["method"].update(parameters_b=False)),
                  name="p.json")
    _rejects(path, "method.parameters_b")


def test_schema_version_2(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o.update(schema_version=2)))
    _rejects(path, "schema_version")


@pytest.mark.parametrize("url", ["ftp://example.org/x", "javascript:alert(1)",
                                 "https://exa mple.org"])
def test_url_must_be_http(tmp_path: Path, url: str) -> None:
    path = _write(tmp_path, _changed(lambda o: o["method"].update(url=url)))
    _rejects(path, "method.url")


def test_missing_file(tmp_path: Path) -> None:
    _rejects(tmp_path / "absent.json", "cannot read")


def test_directory_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "results.json"
    folder.mkdir()
    _rejects(folder, "cannot read")


def test_rejected_file_is_not_indexed(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed(lambda o: o["metrics"].update(roc_auc=1.2)))
    runs = tmp_path / "runs"
    with pytest.raises(SubmissionError):
        submit(path, runs)
    assert index.list_submissions(runs) == []


# --------------------------------------------------------------------------- the schema

def test_published_schema_is_current_and_valid() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text()
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(VALID)
    assert sorted(schema["properties"]["task"]["enum"]) == sorted(TASKS.names())


def test_reported_values_are_within_the_schema_ranges() -> None:
    data = yaml.safe_load(REPORTED_PATH.read_text(encoding="utf-8"))
    registered = set(TASKS.names())
    checked, bad = 0, []
    for i, row in enumerate(data["rows"]):
        if row["task"] not in registered:
            continue
        cls = TASKS.get(row["task"])
        for key, value in row["metrics"].items():
            if not any(re.fullmatch(p, key) for p in cls.metric_patterns()):
                continue
            lo, hi = cls.metric_range(key)
            checked += 1
            if not lo <= value <= hi:
                bad.append(f"rows[{i}] {row['task']} {key}={value} not in [{lo}, {hi}]")
    assert checked > 100
    assert bad == [], "\n".join(bad)


# --------------------------------------------------------------------------- the CLI

def test_cli_submit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    good = _write(tmp_path, VALID, name="good.json")
    assert main(["submit", str(good), "--runs", str(runs)]) == 0
    assert "added to" in capsys.readouterr().out
    assert len(index.list_submissions(runs)) == 1
    assert main(["submit", str(good), "--runs", str(runs)]) == 0
    assert "already in" in capsys.readouterr().out

    bad = _write(tmp_path, _changed(lambda o: o["metrics"].update(roc_auc=1.2)), name="bad.json")
    assert main(["submit", str(bad), "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "metrics.roc_auc" in err
    assert len(index.list_submissions(runs)) == 1


def test_cli_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == submission_schema()
