"""The SQLite (WAL) run index under concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

from harness import index


def _writer(runs: str, who: str, n: int) -> None:
    for i in range(n):
        index.register_run(runs, Path(runs) / f"{who}-{i}", {"task": "t", "method": who})
        index.register_run(runs, Path(runs) / f"{who}-{i}", {"task": "t", "method": who},
                           status="done", metrics={"roc_auc": i / n})


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = index.list_runs(tmp_path)
    assert len(rows) == 80
    assert all(r["status"] == "done" for r in rows)
    mode = sqlite3.connect(tmp_path / index.INDEX_NAME).execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"
