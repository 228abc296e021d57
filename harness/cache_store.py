"""Storage of the response cache (:mod:`harness.cache`): per-process append-only logs
folded into SQLite; see :mod:`harness.cache`'s docstring for the crash-safety argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.cache_keys import KEY_VERSION  # noqa: F401  (re-exported for readers of entries)
from harness.engines.base import (
    EngineError,
)
from harness.sqlite_wal import connect_wal

DB_NAME = "responses.sqlite"
LOG_DIR = "logs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""

# SQLite connections inherited over fork() must not be used nor closed by the child.
_ABANDONED: list[Any] = []


# -- storage -------------------------------------------------------------------------------------
def _connect(path: Path, timeout_s: float = 60.0) -> sqlite3.Connection:
    return connect_wal(path, _SCHEMA, timeout_s, synchronous="FULL", check_same_thread=False)


def read_log(path: Path) -> tuple[list[tuple[str, str]], int]:
    """Complete entries ``(key, value_json)`` of a log and the number of lines skipped (a torn
    last line, or a line that is not a valid entry)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a torn write
    skipped = 1 if tail.strip() else 0
    out: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            key, value = rec["k"], rec["v"]
            if not isinstance(key, str) or not isinstance(value, dict):
                raise ValueError("bad entry")
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        out.append((key, json.dumps(value, separators=(",", ":"))))
    return out, skipped


class ResponseStore:
    """Key -> value JSON store: per-process append-only logs compacted into SQLite."""

    def __init__(self, root: Path | str, compact_every: int = 64) -> None:
        self.root = Path(root)
        self.compact_every = max(1, int(compact_every))
        self.skipped_lines = 0
        self._lock = threading.RLock()
        self._pid = -1
        self._con: sqlite3.Connection | None = None
        self._log_fd: int | None = None
        self._log_path: Path | None = None
        self._tail: dict[str, str] = {}
        self._closed = False
        self._open()

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def log_dir(self) -> Path:
        return self.root / LOG_DIR

    # -- lifecycle ---------------------------------------------------------------------------
    def _open(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._con = _connect(self.db_path)
        self._log_fd, self._log_path = None, None
        self._tail = {}
        self.compact_orphans()

    def _check_process(self) -> None:
        """After a fork, drop the parent's connection and log (without closing the
        connection: SQLite forbids using it in the child) and open our own."""
        if self._closed:
            raise EngineError(f"response cache {self.root} is closed")
        if os.getpid() != self._pid:
            _ABANDONED.append(self._con)
            if self._log_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._log_fd)  # the parent keeps its own descriptor and lock
            self._open()

    def __getstate__(self) -> dict[str, Any]:
        """A copy (a Ray worker, a spawned process) reopens the store; our uncompacted
        entries are moved into SQLite first so that the copy sees them."""
        with self._lock:
            if not self._closed and os.getpid() == self._pid:
                self._compact_own()
        return {"root": str(self.root), "compact_every": self.compact_every}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["compact_every"])  # type: ignore[misc]

    def close(self) -> None:
        """Move this process's entries into SQLite, delete its log, close."""
        with self._lock:
            if self._closed:
                return
            if os.getpid() == self._pid:
                self._compact_own()
                if self._log_fd is not None and self._log_path is not None:
                    with contextlib.suppress(OSError):
                        self._log_path.unlink()
                    os.close(self._log_fd)
                if self._con is not None:
                    self._con.close()
            self._log_fd, self._log_path, self._con = None, None, None
            self._closed = True

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        with self._lock:
            self._check_process()
            if key in self._tail:
                return self._tail[key]
            assert self._con is not None
            row = self._con.execute("SELECT value FROM responses WHERE key = ?",
                                    (key,)).fetchone()
            return None if row is None else str(row[0])

    def __len__(self) -> int:
        with self._lock:
            self._check_process()
            assert self._con is not None
            n = int(self._con.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            if self._tail:
                keys = list(self._tail)
                stored = 0
                for lo in range(0, len(keys), 500):
                    chunk = keys[lo:lo + 500]
                    q = ",".join("?" * len(chunk))
                    stored += int(self._con.execute(
                        f"SELECT COUNT(*) FROM responses WHERE key IN ({q})", chunk
                    ).fetchone()[0])
                n += len(keys) - stored
            return n

    # -- writes ------------------------------------------------------------------------------
    def _new_log(self) -> None:
        """Create this process's log, locked before it becomes visible under its final name
        (a compactor must never see it unlocked)."""
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
        final = self.log_dir / name
        tmp = self.log_dir / f".{name}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, final)
        except OSError:
            os.close(fd)
            raise
        self._log_fd, self._log_path = fd, final

    def put_many(self, entries: Iterable[tuple[str, str]]) -> None:
        """Append entries (key, value JSON); durable (fsync) on return."""
        items = list(entries)
        if not items:
            return
        lines = "".join('{"k":' + json.dumps(k) + ',"v":' + v + "}\n" for k, v in items)
        data = lines.encode("utf-8")
        with self._lock:
            self._check_process()
            if self._log_fd is None:
                self._new_log()
            fd = self._log_fd
            assert fd is not None
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # no partial line before the next append
                    os.ftruncate(fd, start)
                raise
            self._tail.update(items)
            if len(self._tail) >= self.compact_every:
                self._compact_own()

    def _insert(self, items: Sequence[tuple[str, str]]) -> None:
        if not items:
            return
        assert self._con is not None
        con = self._con
        now = time.time()
        deadline = time.monotonic() + 120.0
        while True:
            try:
                con.execute("BEGIN IMMEDIATE")
                con.executemany(
                    "INSERT OR IGNORE INTO responses (key, value, created) VALUES (?, ?, ?)",
                    [(k, v, now) for k, v in items])
                con.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _compact_own(self) -> None:
        if not self._tail:
            return
        self._insert(list(self._tail.items()))
        if self._log_fd is not None:
            os.ftruncate(self._log_fd, 0)
            os.fsync(self._log_fd)
        self._tail.clear()

    def compact_orphans(self) -> int:
        """Move the logs of dead processes into SQLite and delete them; returns entries read."""
        n = 0
        for path in sorted(self.log_dir.glob("*.jsonl")):
            if path == self._log_path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                if not path.exists():
                    continue  # another compactor took it
                items, skipped = read_log(path)
                self._insert(items)
                self.skipped_lines += skipped
                n += len(items)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            finally:
                os.close(fd)
        return n

    def compact(self) -> None:
        """Move this process's entries and dead processes' logs into SQLite (idempotent)."""
        with self._lock:
            self._check_process()
            self._compact_own()
            self.compact_orphans()


def iter_entries(root: Path | str) -> Iterator[tuple[str, str]]:
    """Every (key, value JSON) in the SQLite part of a cache (for inspection and tests)."""
    con = sqlite3.connect(Path(root) / DB_NAME)
    try:
        yield from ((str(k), str(v)) for k, v in con.execute(
            "SELECT key, value FROM responses ORDER BY key"))
    finally:
        con.close()
