"""Leaderboard rows from three sources: measured runs, paper-reported results, submissions.

A :class:`Row` is one method's metrics on one task, with what a reader needs to weigh it: the
backbone and its size, whether the method is trained, the split, 95% intervals where known,
and where the number comes from (``source``):

* ``measured``: a finished run in the run index (``RUNS_DIR/index.sqlite``); ``ref`` is the
  run's name and :attr:`Row.provenance` holds its resolved config, commit, dataset
  fingerprint, label convention, engine, batch size and date.
* ``reported``: a row of a seed paper's table, from ``leaderboard/reported.yaml``;
  ``ref`` is ``"<paper> Table <n>: <row label>"`` and :attr:`Row.citation` its reference.
* ``submitted``: a result file added with ``vad-eval submit`` (validated on entry).

Strings from submissions are data: the app shows them as text only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPORTED_PATH = Path(__file__).with_name("reported.yaml")
SOURCES = ("measured", "reported", "submitted")


@dataclass(frozen=True)
class Row:
    """One method on one task.

    Attributes:
        source: ``measured`` | ``reported`` | ``submitted``.
        task: task name (a registered task, or a benchmark id only papers report).
        method: display name of the method.
        backbone: the VLM/LLM the method runs on (``None`` when not stated).
        params_b: its size in billions of parameters (``None`` when not stated).
        trained: ``True`` trained, ``False`` training-free / zero-shot, ``None`` unknown.
        split: ``test`` or ``sample`` (the bundled sample world: a plumbing check).
        metrics: metric key -> value (fractions; see :meth:`tasks.base.Task.metric_range`).
        ci95: metric key -> ``(lo, hi)`` 95% interval, where the source gives one.
        variant: ablation / setting label (``None`` for a main result).
        citation: the paper or URL a reported or submitted number comes from.
        ref: the run name, ``"<paper> Table <n>: <row>"``, or the submission id.
        date: ISO date of the run or submission (``None`` for reported rows).
        provenance: details shown when a row is opened (run config, commit, ...).
    """

    source: str
    task: str
    method: str
    backbone: str | None
    params_b: float | None
    trained: bool | None
    split: str
    metrics: dict[str, float]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    variant: str | None = None
    citation: str | None = None
    ref: str = ""
    date: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def entry(self) -> str:
        """What ranks across tasks: the method with its backbone and variant."""
        parts = [self.method]
        if self.backbone:
            parts.append(f"[{self.backbone}]")
        if self.variant:
            parts.append(f"({self.variant})")
        return " ".join(parts)


def _date(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else None


def _numbers(obj: Any) -> dict[str, float]:
    return {k: float(v) for k, v in (obj or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's ``metrics.json``, or ``{}`` when it cannot be read (the index row's headline
    metrics are used then)."""
    from leaderboard.run_data import RunDataError, read_metrics

    try:
        return read_metrics(run_dir)
    except RunDataError:
        return {}


def _trained(method: str, settings: dict[str, Any], known: set[str]) -> bool:
    """Trained when the run used a checkpoint or the (registered) method says so. Names that
    are not registered here (a ``module:Class`` method, a plug-in not installed) are not
    imported: the index is data, not code to run."""
    from harness.registry import METHODS

    if settings.get("checkpoint"):
        return True
    return method in known and bool(getattr(METHODS.get(method), "trained", False))


def measured_rows(runs_dir: Path | str) -> list[Row]:
    """Finished runs of the index (newest first), with their provenance."""
    from harness.index import INDEX_NAME, list_runs
    from harness.registry import METHODS

    if not (Path(runs_dir) / INDEX_NAME).exists():
        return []
    known = set(METHODS.names())
    rows = []
    for rec in list_runs(runs_dir):
        if rec["status"] != "done":
            continue
        config = rec["config"] or {}
        run_dir = Path(rec["run_dir"])
        result = _read_metrics(run_dir)
        info = config.get("engine_info") or {}
        msettings = (config.get("method_settings") or {}).get("settings") or {}
        params = info.get("parameters")
        ci = {k: (float(v[0]), float(v[1])) for k, v in (result.get("ci95") or {}).items()
              if isinstance(v, list) and len(v) == 2 and None not in v}
        protocol = config.get("protocol") or {}
        rows.append(Row(
            source="measured", task=rec["task"], method=rec["method"],
            backbone=info.get("model") or rec.get("model"),
            params_b=float(params) / 1e9 if isinstance(params, int | float) else None,
            trained=_trained(rec["method"], msettings, known),
            split=rec.get("split") or "test",
            metrics=_numbers(result.get("metrics") or rec["metrics"]),
            ci95=ci, ref=run_dir.name, date=_date(rec.get("updated")),
            provenance={
                "run_dir": str(run_dir),
                "commit": (config.get("git") or {}).get("commit"),
                "dirty": (config.get("git") or {}).get("dirty"),
                "dataset_fingerprint": (config.get("dataset") or {}).get("fingerprint"),
                "n_samples": (config.get("dataset") or {}).get("n_samples"),
                "label_convention": protocol.get("label_convention"),
                "engine": config.get("engine"),
                "batch_size": info.get("batch_size"),
                "date": _date(rec.get("updated")),
                "resolved_config": config.get("resolved"),
                "method_settings": msettings,
            }))
    return rows


def load_reported(path: Path | str = REPORTED_PATH) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(papers, rows)`` of the paper-reported data file, checked for the fields rows need.

    Raises:
        ValueError: naming the file, the row's position and the missing or bad field.
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected a mapping with 'papers' and a 'rows' list")
    papers = data.get("papers") or {}
    for i, r in enumerate(data["rows"]):
        where = f"{path}: rows[{i}]"
        for key in ("paper", "table", "row", "method", "task", "metrics"):
            if r.get(key) in (None, ""):
                raise ValueError(f"{where}: missing field {key!r}")
        if r["paper"] not in papers:
            raise ValueError(f"{where}: paper {r['paper']!r} is not a key of 'papers'")
        if not isinstance(r["metrics"], dict) or not r["metrics"]:
            raise ValueError(f"{where}: field 'metrics' must be a non-empty mapping")
        for k, v in r["metrics"].items():
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise ValueError(f"{where}: metrics.{k} is not a number: {v!r}")
    return papers, data["rows"]


def _paper_citation(paper: dict[str, Any]) -> str:
    bits = [paper.get("authors"), paper.get("title"), paper.get("venue"), paper.get("year")]
    return ", ".join(str(b) for b in bits if b)


def reported_rows(path: Path | str = REPORTED_PATH) -> list[Row]:
    """Rows of the seed papers' tables (see ``leaderboard/reported.yaml``)."""
    papers, raw = load_reported(path)
    rows = []
    for r in raw:
        paper = papers[r["paper"]]
        ref = f"{r['paper']} Table {r['table']}: {r['row']}"
        rows.append(Row(
            source="reported", task=r["task"], method=r.get("display") or r["method"],
            backbone=r.get("backbone"), params_b=r.get("params_b"), trained=r.get("trained"),
            split=r.get("split") or "test", metrics=_numbers(r["metrics"]),
            variant=r.get("variant"), citation=r.get("citation"), ref=ref,
            provenance={"paper": _paper_citation(paper), "seed": paper.get("seed"),
                        "table": r["table"], "row": r["row"],
                        "supervision": r.get("supervision"),
                        "as_reported": r.get("as_reported"), "notes": r.get("notes")}))
    return rows


def submitted_rows(runs_dir: Path | str) -> list[Row]:
    """Rows of ``vad-eval submit`` files in the index."""
    from harness.index import INDEX_NAME, list_submissions

    if not (Path(runs_dir) / INDEX_NAME).exists():
        return []
    rows = []
    for rec in list_submissions(runs_dir):
        p = rec["payload"]
        m = p["method"]
        rows.append(Row(
            source="submitted", task=p["task"], method=m["name"], backbone=m.get("backbone"),
            params_b=m.get("parameters_b"), trained=m.get("trained"), split=p["split"],
            metrics=_numbers(p["metrics"]),
            ci95={k: (float(v[0]), float(v[1])) for k, v in (p.get("ci95") or {}).items()},
            citation=m.get("citation") or m.get("url"), ref=rec["submission_id"],
            date=p.get("date") or _date(rec["submitted"]),
            provenance={"submission_id": rec["submission_id"], "url": m.get("url"),
                        "commit": p.get("commit"), "n_videos": p.get("n_videos"),
                        "submitter": p.get("submitter"), "notes": p.get("notes")}))
    return rows


def all_rows(runs_dir: Path | str | None, reported: Path | str | None = REPORTED_PATH) -> list[Row]:
    """Measured and submitted rows of ``runs_dir`` plus the reported rows."""
    rows: list[Row] = []
    if runs_dir is not None:
        rows += measured_rows(runs_dir) + submitted_rows(runs_dir)
    if reported is not None:
        rows += reported_rows(reported)
    return rows
