"""Result files submitted from outside the harness: the published JSON schema and its checks.

A submission is one JSON object (schema version 1)::

    {"schema_version": 1,
     "task": "ucf_crime",                      # a registered task
     "split": "test",
     "method": {"name": "MyVAD", "backbone": "Qwen2-VL-7B", "parameters_b": 7.0,
                "trained": false, "url": "https://...", "citation": "..."},
     "metrics": {"roc_auc": 0.84, "pr_auc": 0.31},   # the task's metric names, in range
     "ci95": {"roc_auc": [0.82, 0.86]},                # optional
     "n_videos": 290, "commit": "...", "date": "2026-11-21", "notes": "..."}

:func:`submission_schema` builds the JSON Schema (draft 2020-12) from the task registry: every
task's metric names (:meth:`tasks.base.Task.metric_patterns`) and value ranges
(:meth:`tasks.base.Task.metric_range`); ``leaderboard/submission.schema.json`` is that schema as
published (a test keeps the file equal to the builder). :func:`load_submission` reads a file
with the plain ``json`` module (no pickles, no YAML tags, no code), rejecting what JSON Schema
cannot see: files over :data:`MAX_BYTES`, ``NaN``/``Infinity`` and repeated keys. Every error
names the file and the field (``metrics.roc_auc``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("submission.schema.json")
#: the largest submission file read (bytes)
MAX_BYTES = 256 * 1024
MAX_METRICS = 200
_SPLITS = ("test", "sample")


class SubmissionError(ValueError):
    """A submission that does not validate; the message names the file and every bad field."""


def _text(max_len: int, min_len: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_len, "maxLength": max_len}


def _task_clause(name: str, cls: Any) -> dict[str, Any]:
    patterns = cls.metric_patterns()
    metric_props = {f"^(?:{p})$": {"type": "number", "minimum": cls.metric_range(p)[0],
                                   "maximum": cls.metric_range(p)[1]} for p in patterns}
    names = {"pattern": "^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$"}
    return {
        "if": {"properties": {"task": {"const": name}}, "required": ["task"]},
        "then": {"properties": {
            "metrics": {"patternProperties": metric_props, "additionalProperties": False},
            "ci95": {"propertyNames": names},
        }},
    }


def submission_schema() -> dict[str, Any]:
    """The JSON Schema of a submission, built from the registered tasks (see module doc)."""
    from harness.registry import TASKS

    names = sorted(TASKS.names())
    interval = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "vad-eval/submission.schema.json",
        "title": "vad-eval result submission",
        "description": "One method's metrics on one vad-eval task, added to a leaderboard with "
                       "`vad-eval submit FILE.json`. Metric values are fractions (0.84, not "
                       "84) except where a task's range says otherwise (HIVAU CIDEr).",
        "type": "object",
        "additionalProperties": False,
        "required": ["schema_version", "task", "split", "method", "metrics"],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "task": {"enum": names},
            "split": {"enum": list(_SPLITS)},
            "method": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": _text(120, 1),
                    "backbone": _text(120),
                    "parameters_b": {"type": "number", "minimum": 0, "maximum": 100000},
                    "trained": {"type": "boolean"},
                    "url": {**_text(500), "pattern": "^https?://[^\\s]+$"},
                    "citation": _text(500),
                },
            },
            "metrics": {"type": "object", "minProperties": 1, "maxProperties": MAX_METRICS},
            "ci95": {"type": "object", "maxProperties": MAX_METRICS,
                     "additionalProperties": interval},
            "n_videos": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
            "commit": {"type": "string", "pattern": "^[0-9a-f]{7,64}$"},
            "date": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
            "submitter": _text(200),
            "notes": _text(2000),
        },
        "allOf": [_task_clause(n, TASKS.get(n)) for n in names],
    }


def schema_text() -> str:
    """The schema as published (``leaderboard/submission.schema.json``)."""
    return json.dumps(submission_schema(), indent=2, sort_keys=True) + "\n"


class _NonFinite:
    def __init__(self, token: str) -> None:
        self.token = token


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SubmissionError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def _field(path: Any) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _non_finite(obj: Any, path: tuple[Any, ...] = ()) -> list[str]:
    if isinstance(obj, _NonFinite):
        return [f"field {_field(path)}: {obj.token} is not allowed (metrics must be finite)"]
    if isinstance(obj, dict):
        return [e for k, v in obj.items() for e in _non_finite(v, (*path, k))]
    if isinstance(obj, list):
        return [e for i, v in enumerate(obj) for e in _non_finite(v, (*path, i))]
    return []


def _semantic(obj: Mapping[str, Any]) -> list[str]:
    """Checks JSON Schema cannot state: intervals ordered, in range, of reported metrics."""
    from harness.registry import TASKS

    errors = []
    metrics = obj.get("metrics") or {}
    cls: Any = TASKS.get(obj["task"])
    for key, ci in (obj.get("ci95") or {}).items():
        if key not in metrics:
            errors.append(f"field ci95.{key}: interval for a metric not in 'metrics'")
            continue
        lo, hi = ci
        rlo, rhi = cls.metric_range(key)
        if not (rlo <= lo <= hi <= rhi):
            errors.append(f"field ci95.{key}: [{lo}, {hi}] must satisfy "
                          f"{rlo} <= lo <= hi <= {rhi}")
    return errors


def _unknown_metrics(obj: Any) -> list[str]:
    """``field metrics.K: ...`` for each key that is not a metric of the (registered) task."""
    import re

    from harness.registry import TASKS

    # only registered names: TASKS.get would also import a ``module:attr`` string
    if (not isinstance(obj, dict) or not isinstance(obj.get("metrics"), dict)
            or obj.get("task") not in TASKS.names()):
        return []
    cls: Any = TASKS.get(obj["task"])
    pats = cls.metric_patterns()
    return [f"field metrics.{k}: not a metric of task {obj['task']!r} (its metrics match: "
            f"{', '.join(pats)})" for k in obj["metrics"]
            if not any(re.fullmatch(p, k) for p in pats)]


def validate_submission(obj: Any, where: str = "submission") -> dict[str, Any]:
    """Check a parsed submission against the schema; returns it or raises
    :class:`SubmissionError` listing every problem as ``where: field F: message``."""
    import jsonschema

    problems = _non_finite(obj)
    if not problems:
        validator = jsonschema.Draft202012Validator(submission_schema())
        errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.path])
        problems = _unknown_metrics(obj)
        problems += [f"field {_field(e.path)}: {e.message}" for e in errors
                     if not (problems and list(e.path) == ["metrics"]
                             and e.validator == "additionalProperties")]
        if not problems:
            problems = _semantic(obj)
    if problems:
        raise SubmissionError(f"{where}: " + f"\n{where}: ".join(problems))
    return dict(obj)


def load_submission(path: Path | str) -> dict[str, Any]:
    """Read and validate a submission file (plain JSON, at most :data:`MAX_BYTES`)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if size > MAX_BYTES:
        raise SubmissionError(f"{path}: {size} bytes; a submission is at most {MAX_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8")
        obj = json.loads(text, parse_constant=_NonFinite, object_pairs_hook=_pairs)
    except OSError as exc:  # a directory, no permission, ...
        raise SubmissionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path}: not JSON: {exc.msg} at line {exc.lineno} "
                              f"column {exc.colno}") from exc
    except SubmissionError as exc:
        raise SubmissionError(f"{path}: {exc}") from exc
    return validate_submission(obj, str(path))


def submission_id(obj: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the canonical JSON: the same content, the same id."""
    canon = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def submit(path: Path | str, runs_dir: Path | str) -> tuple[str, bool]:
    """Validate ``path`` and add it to the index of ``runs_dir``; returns ``(id, added)``
    (``added`` is False when the same content was submitted before)."""
    from harness.index import add_submission

    obj = load_submission(path)
    sid = submission_id(obj)
    return sid, add_submission(runs_dir, sid, obj)


if __name__ == "__main__":  # python -m leaderboard.submission > leaderboard/submission.schema.json
    print(schema_text(), end="")
