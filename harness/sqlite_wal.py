"""Opening SQLite databases in WAL mode from several processes at once.

Used by the runs index (:mod:`harness.index`) and the response cache (:mod:`harness.cache`).
Switching a new database to WAL, and creating its schema, can fail at once with "database is
locked" while another process does the same: SQLite's busy handler does not cover the
journal-mode change. :func:`connect_wal` retries that step with backoff until ``timeout_s``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: Path, schema: str, timeout_s: float = 60.0, synchronous: str = "NORMAL",
                check_same_thread: bool = True) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode with ``schema`` applied."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        con = sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                              check_same_thread=check_same_thread)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute(f"PRAGMA synchronous = {synchronous}")
            con.executescript(schema)
            return con
        except sqlite3.OperationalError as exc:
            con.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
