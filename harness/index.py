"""The run index: one SQLite database (WAL mode) per runs directory, read by the leaderboard.

``RUNS_DIR/index.sqlite`` has one row per run (keyed by the run directory's name) holding the
task, method, model, split, status, headline metrics and the paths of the run's files. Runs
register when they start (status ``running``) and update when they finish (``done``).
A second table holds the result files added with ``vad-eval submit`` (already validated, see
:mod:`leaderboard.submission`), keyed by the SHA-256 of their canonical JSON, so that submitting
the same file twice keeps one row.

Concurrency: several processes may write at once (two evaluations sharing a runs directory).
WAL mode lets readers proceed during a write; writers serialise on SQLite's lock with a busy
timeout and short ``BEGIN IMMEDIATE`` transactions, so every write lands.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.sqlite_wal import connect_wal

INDEX_NAME = "index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_name   TEXT PRIMARY KEY,
    run_dir    TEXT NOT NULL,
    task       TEXT NOT NULL,
    method     TEXT NOT NULL,
    model      TEXT,
    engine     TEXT,
    split      TEXT,
    status     TEXT NOT NULL,
    created    REAL NOT NULL,
    updated    REAL NOT NULL,
    metrics    TEXT,
    config     TEXT
);
CREATE INDEX IF NOT EXISTS runs_task ON runs(task);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id TEXT PRIMARY KEY,
    task          TEXT NOT NULL,
    method        TEXT NOT NULL,
    submitted     REAL NOT NULL,
    payload       TEXT NOT NULL
);
"""


def connect(runs_dir: Path | str, timeout_s: float = 60.0) -> sqlite3.Connection:
    """Open (creating if needed) the index of ``runs_dir`` in WAL mode."""
    path = Path(runs_dir)
    path.mkdir(parents=True, exist_ok=True)
    return connect_wal(path / INDEX_NAME, _SCHEMA, timeout_s)


def _write(con: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    deadline = time.monotonic() + 120.0
    while True:
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute(sql, params)
            con.execute("COMMIT")
            return
        except sqlite3.OperationalError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def register_run(
    runs_dir: Path | str,
    run_dir: Path | str,
    config: Mapping[str, Any],
    status: str = "running",
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Insert or update the row of ``run_dir`` (its name is the key)."""
    run_dir = Path(run_dir)
    now = time.time()
    con = connect(runs_dir)
    try:
        _write(
            con,
            """INSERT INTO runs (run_name, run_dir, task, method, model, engine, split, status,
                                 created, updated, metrics, config)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(run_name) DO UPDATE SET status=excluded.status,
                 updated=excluded.updated, metrics=COALESCE(excluded.metrics, runs.metrics),
                 config=excluded.config""",
            (
                run_dir.name,
                str(run_dir.resolve()),
                str(config.get("task")),
                str(config.get("method")),
                config.get("model"),
                config.get("engine"),
                config.get("split"),
                status,
                now,
                now,
                json.dumps(metrics, sort_keys=True) if metrics is not None else None,
                json.dumps(config, sort_keys=True, default=str),
            ),
        )
    finally:
        con.close()


def list_runs(runs_dir: Path | str, task: str | None = None) -> list[dict[str, Any]]:
    """All indexed runs (optionally of one task), newest first, metrics decoded."""
    con = connect(runs_dir)
    con.row_factory = sqlite3.Row
    try:
        sql = "SELECT * FROM runs" + (" WHERE task = ?" if task else "") + " ORDER BY created DESC"
        rows = con.execute(sql, (task,) if task else ()).fetchall()
    finally:
        con.close()
    out = []
    for row in rows:
        rec = dict(row)
        rec["metrics"] = json.loads(rec["metrics"]) if rec["metrics"] else None
        rec["config"] = json.loads(rec["config"]) if rec["config"] else None
        out.append(rec)
    return out


def add_submission(runs_dir: Path | str, submission_id: str, payload: Mapping[str, Any]) -> bool:
    """Store a validated submission; ``False`` when that id is already indexed (kept as is)."""
    con = connect(runs_dir)
    try:
        if con.execute("SELECT 1 FROM submissions WHERE submission_id = ?",
                       (submission_id,)).fetchone():
            return False
        _write(con, """INSERT OR IGNORE INTO submissions
                       (submission_id, task, method, submitted, payload) VALUES (?, ?, ?, ?, ?)""",
               (submission_id, str(payload["task"]), str(payload["method"]["name"]), time.time(),
                json.dumps(payload, sort_keys=True, allow_nan=False)))
        return True
    finally:
        con.close()


def list_submissions(runs_dir: Path | str) -> list[dict[str, Any]]:
    """All submissions, oldest first: ``{"submission_id", "submitted", "payload"}``."""
    con = connect(runs_dir)
    try:
        rows = con.execute("SELECT submission_id, submitted, payload FROM submissions "
                           "ORDER BY submitted, submission_id").fetchall()
    finally:
        con.close()
    return [{"submission_id": i, "submitted": t, "payload": json.loads(p)} for i, t, p in rows]
