"""The run store: one directory per run, append-only records, crash-safe resume.

Layout of ``RUNS_DIR/<run>/``::

    config.json        resolved config, package versions, git commit, dataset fingerprint,
                       label convention (written once at start; checked on resume)
    predictions.jsonl  one JSON record per finished sample, appended, flushed and fsynced
    errors.jsonl       one record per sample that failed (file, reason); retried on resume
    metrics.json       {"task", "method", "metrics": {...}, ...}: deterministic, no timestamps
    run_info.json      timings and counts of the last session (not part of the result)

A run killed at any point (SIGKILL included) can be resumed: a torn last line of
``predictions.jsonl`` is cut off, finished samples are skipped, and the final ``metrics.json``
equals the one of an uninterrupted run, because metrics are computed from the records in the
task's sample order, never from the order they were written in.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

CONFIG = "config.json"
PREDICTIONS = "predictions.jsonl"
ERRORS = "errors.jsonl"
METRICS = "metrics.json"
RUN_INFO = "run_info.json"


class RunStoreError(RuntimeError):
    """The run directory is unusable (exists without --resume, config mismatch, bad record)."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, NaN forbidden (a NaN score is a bug, not a number)."""
    return json.dumps(obj, sort_keys=True, default=_json_default, allow_nan=False)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON through a temp file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(obj, sort_keys=True, indent=2, default=_json_default, allow_nan=False)
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RunStoreError(f"{path}:{lineno}: not a JSON record ({exc})") from exc


def _truncate_torn_tail(path: Path) -> int:
    """Cut a partial last line (a write interrupted by a kill). Returns bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        # find the last newline
        block = 65536
        pos = size
        keep = 0
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        fh.truncate(keep)
        return size - keep


class RunStore:
    """Reads and writes one run directory. ``key`` names the record field that identifies a
    sample (``video_id`` for frame tasks)."""

    def __init__(self, run_dir: Path | str, key: str = "video_id") -> None:
        self.dir = Path(run_dir)
        self.key = key

    # -- lifecycle -----------------------------------------------------------------------
    def open(self, config: Mapping[str, Any], resume: bool, compare: tuple[str, ...] = ()) -> None:
        """Create the run directory, or reopen it for ``resume``.

        Args:
            config: the resolved config to write (new run) or check against (resume).
            resume: reopen an existing run; a missing run directory starts a new run.
            compare: top-level config keys that must be equal on resume.
        """
        cfg_path = self.dir / CONFIG
        if cfg_path.exists():
            if not resume:
                raise RunStoreError(
                    f"run directory {self.dir} already holds a run; pass --resume to continue "
                    f"it or --run-name to start another"
                )
            old = json.loads(cfg_path.read_text(encoding="utf-8"))
            for k in compare:
                if dumps(old.get(k)) != dumps(config.get(k)):
                    raise RunStoreError(
                        f"cannot resume {self.dir}: config field {k!r} differs "
                        f"(run has {old.get(k)!r}, now {config.get(k)!r})"
                    )
            _truncate_torn_tail(self.dir / PREDICTIONS)
            _truncate_torn_tail(self.dir / ERRORS)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cfg_path, dict(config))
        (self.dir / PREDICTIONS).touch()
        (self.dir / ERRORS).touch()

    @property
    def exists(self) -> bool:
        return (self.dir / CONFIG).exists()

    def config(self) -> dict[str, Any]:
        return json.loads((self.dir / CONFIG).read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    # -- records -------------------------------------------------------------------------
    def _append(self, name: str, record: Mapping[str, Any]) -> None:
        line = dumps(record) + "\n"
        with (self.dir / name).open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def append_prediction(self, record: Mapping[str, Any]) -> None:
        """Append one finished sample's record (must carry ``self.key``); durable on return."""
        if self.key not in record:
            raise RunStoreError(f"prediction record lacks the key field {self.key!r}")
        self._append(PREDICTIONS, record)

    def append_error(self, record: Mapping[str, Any]) -> None:
        self._append(ERRORS, record)

    def predictions(self) -> dict[str, dict[str, Any]]:
        """Records by sample key. A key written twice (possible only if two processes ran the
        same run directory at once) keeps the first record and is reported as an error."""
        out: dict[str, dict[str, Any]] = {}
        path = self.dir / PREDICTIONS
        if not path.exists():
            return out
        for lineno, rec in _iter_jsonl(path):
            k = rec.get(self.key)
            if k is None:
                raise RunStoreError(f"{path}:{lineno}: record lacks {self.key!r}")
            if k in out:
                raise RunStoreError(f"{path}:{lineno}: duplicate record for {k!r}")
            out[str(k)] = rec
        return out

    def errors(self) -> list[dict[str, Any]]:
        path = self.dir / ERRORS
        return [rec for _, rec in _iter_jsonl(path)] if path.exists() else []

    def finished(self) -> set[str]:
        return set(self.predictions())

    def write_metrics(self, result: Mapping[str, Any]) -> None:
        write_json_atomic(self.dir / METRICS, _finite(result))

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.dir / METRICS).read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def write_info(self, info: Mapping[str, Any]) -> None:
        write_json_atomic(self.dir / RUN_INFO, info)


def _finite(obj: Any) -> Any:
    """Replace non-finite floats by None (a metric undefined on a split, e.g. AUC with one
    class) so metrics.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
