"""Response cache: deterministic engine answers stored on disk, keyed by what determines them.

:class:`CachedEngine` wraps any :class:`~harness.engines.base.Engine`. A request whose answer
is fully determined by its inputs (greedy decoding, ``temperature <= 0``, with ``n == 1``) is
looked up first; only the misses go to the wrapped engine, in one ``generate`` call, in their
original order. Sampled requests (``temperature > 0`` or ``n > 1``) always go to the engine and
are counted as ``uncacheable``. ``embed_frames`` is cached the same way, one entry per clip.
``wrap_engine(engine, enabled=False)`` (the CLI's ``--no-cache``) passes everything through.

Cache key
---------
``sha256`` of the canonical JSON (sorted keys, no whitespace) of::

    {"v": KEY_VERSION, "kind": "generate", "engine": <engine identity digest>,
     "messages": [{"role": ..., "content": [<part>, ...]}, ...],
     "sampling": {<every SamplingParams field>}, "lora": null | {"sha256": ...}}

* ``KEY_VERSION`` is bumped whenever the key or the stored value changes format, so old
  entries simply stop matching.
* Engine identity (:func:`engine_identity`): the engine's ``cache_identity()`` if it has one,
  else its ``describe()`` without the settings that do not change results (batch size,
  concurrency, time-outs, retries, the engine seed, which greedy decoding never uses), with
  ``device`` reduced to its type (``cuda:1`` -> ``cuda``) and the model directory ``path``
  replaced by a fingerprint of its contents (:func:`model_fingerprint`: every file's relative
  name and size, the sha256 of every file up to 1 MiB (configs, tokenizer, chat template) and
  the blob name a Hugging Face hub symlink points to; moving a model directory keeps its
  entries). The model id, dtype, family, ``max_pixels`` and library versions stay in it.
* Parts: text as is; an image as ``{"sha256", "shape", "dtype"}`` of its pixel array; a video
  as the same plus ``fps`` (as a float) and ``frame_indices``. ``request_id`` is not part of the
  key (a hit is returned under the asking request's id).
* Sampling: every field of :class:`SamplingParams`, floats as floats, tuples as lists.
* LoRA: ``None``, or the sha256 of the adapter's content: for a PEFT directory every file's
  relative name and bytes, for in-memory tensors every tensor's name, dtype, shape and bytes.
  The adapter's ``name`` is not part of the key.
* ``embed_frames`` entries use ``"kind": "embed"`` and one clip's array digest.

Storage (``cache_dir()/responses/`` unless a path is given)
-----------------------------------------------------------
``responses.sqlite`` (WAL mode, ``synchronous=FULL``): table ``responses(key, value)`` where
``value`` is the JSON of the completions (every :class:`Completion` field, so a hit returns
exactly what the engine returned) or of the embedding (base64 of its bytes, dtype, shape).

``logs/<host>-<pid>-<random>.jsonl``: each process appends its new entries to its *own* log
(one JSON line per entry, written then ``fsync``-ed before ``generate`` returns) and holds an
exclusive ``flock`` on it for as long as it lives. The log is moved into SQLite (one
``INSERT OR IGNORE`` transaction, then the log is truncated) every ``compact_every`` entries and
on ``close()``. When a store opens it compacts every log it can lock: the kernel drops a lock
when its process dies (SIGKILL included), so a lockable log belongs to a dead process; its
complete lines are inserted and the file is deleted. Only the last line of a log can be torn
(a dead process's log is never appended to again), and a line without its newline is ignored.
Inserting is idempotent, so a crash between the commit and the truncation loses nothing and
duplicates nothing.

Why one log per process rather than one shared log with a lock around appends: appends never
wait on another process (Ray workers, parallel runs), a torn line can only be the last line of
its own file, and liveness comes for free from ``flock``. The cost: a process sees another
live process's new entries only once that process has compacted them (every
``compact_every`` entries, or at close). SQLite writers serialise on SQLite's own lock
(``BEGIN IMMEDIATE`` with a busy time-out). Lookups read this process's uncompacted entries
(in memory) and then SQLite. A store carried into a forked or unpickled process reopens its
connection and starts a log of its own. Use a local file system (``flock`` and SQLite's WAL
are unreliable on some network file systems).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.engines.base import (
    Completion,
    Engine,
    EngineError,
    ImagePart,
    LoRARef,
    Message,
    Request,
    Response,
    SamplingParams,
    TextPart,
    VideoPart,
)
from harness.paths import cache_dir
from harness.sqlite_wal import connect_wal

#: Bump when the key or the stored value changes format: old entries then never match.
KEY_VERSION = 1
DB_NAME = "responses.sqlite"
LOG_DIR = "logs"
#: ``describe()`` keys that do not change what an engine answers to a greedy request.
VOLATILE_KEYS = frozenset({
    "batch_size", "max_concurrency", "timeout_s", "max_retries", "backoff_s", "backoff_max_s",
    "retry_after_max_s", "seed", "api_key_env", "cache",
})
_SMALL_FILE = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""

# SQLite connections inherited over fork() must not be used nor closed by the child.
_ABANDONED: list[Any] = []


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- digests -------------------------------------------------------------------------------------
def array_digest(arr: Any) -> dict[str, Any]:
    """``{"sha256", "shape", "dtype"}`` of an array's bytes (C order)."""
    a = np.ascontiguousarray(np.asarray(arr))
    h = hashlib.sha256()
    h.update(a.data if a.size else b"")
    return {"sha256": h.hexdigest(), "shape": list(a.shape), "dtype": str(a.dtype)}


_DIR_DIGESTS: dict[tuple[str, tuple[Any, ...]], str] = {}


def _dir_listing(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out.append((p.relative_to(root).as_posix(), p, p.stat()))
    return out


def lora_digest(lora: LoRARef | None) -> dict[str, Any] | None:
    """Content digest of an adapter (``None`` for no adapter); see the module docstring."""
    if lora is None:
        return None
    h = hashlib.sha256()
    if lora.tensors is not None:  # the same digest the vllm engine names its PEFT dirs by
        from harness.engines.lora_export import tensors_digest

        return {"tensors_sha256": tensors_digest(lora.tensors)}
    if lora.path is None:
        raise EngineError(f"LoRA adapter {lora.name!r} has neither a path nor tensors")
    root = Path(lora.path)
    if not root.exists():
        raise EngineError(f"LoRA adapter {lora.name!r}: {root} does not exist")
    listing = [(root.name, root, root.stat())] if root.is_file() else _dir_listing(root)
    stamp = tuple((rel, st.st_size, st.st_mtime_ns) for rel, _, st in listing)
    memo = (str(root.resolve()), stamp)
    if memo not in _DIR_DIGESTS:
        for rel, p, st in listing:
            h.update(canonical_json([rel, st.st_size]).encode())
            h.update(p.read_bytes())
        _DIR_DIGESTS[memo] = h.hexdigest()
    return {"dir_sha256": _DIR_DIGESTS[memo]}


def model_fingerprint(path: Path | str) -> str:
    """Digest of a model directory: relative names and sizes of all files, content of the
    small ones, hub blob names of symlinked ones."""
    root = Path(path)
    listing = _dir_listing(root) if root.is_dir() else []
    stamp = tuple((rel, st.st_size, st.st_mtime_ns) for rel, _, st in listing)
    memo = ("model:" + str(root.resolve()), stamp)
    if memo not in _DIR_DIGESTS:
        h = hashlib.sha256()
        for rel, p, st in listing:
            item: list[Any] = [rel, st.st_size]
            if p.is_symlink():
                item.append(Path(os.readlink(p)).name)  # hub cache: blob name = content hash
            elif st.st_size <= _SMALL_FILE:
                item.append(hashlib.sha256(p.read_bytes()).hexdigest())
            h.update(canonical_json(item).encode())
        _DIR_DIGESTS[memo] = h.hexdigest()
    return _DIR_DIGESTS[memo]


def engine_identity(engine: Engine) -> dict[str, Any]:
    """What identifies an engine's answers (see the module docstring)."""
    custom = getattr(engine, "cache_identity", None)
    if callable(custom):
        return dict(custom())
    desc = dict(engine.describe())
    ident: dict[str, Any] = {"engine": desc.get("engine", engine.name)}
    for k, v in desc.items():
        if k in VOLATILE_KEYS or k == "path":
            continue
        if k == "device" and isinstance(v, str):
            v = v.split(":")[0]
        ident[k] = v
    path = desc.get("path")
    resolved = getattr(engine, "resolved", None)
    if path is None and resolved is not None:
        path = getattr(resolved, "path", None)
    if path is not None and Path(str(path)).is_dir():
        ident["model_fingerprint"] = model_fingerprint(str(path))
    elif path is not None:
        ident["path"] = str(path)
    return ident


def _part_key(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"t": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"t": "image", **array_digest(part.image)}
    if isinstance(part, VideoPart):
        return {"t": "video", **array_digest(part.frames), "fps": float(part.fps),
                "frame_indices": [int(i) for i in part.frame_indices]}
    raise EngineError(f"cannot key a content part of type {type(part).__name__}")


def _message_key(msg: Message) -> dict[str, Any]:
    return {"role": msg.role, "content": [_part_key(p) for p in msg.content]}


def _sampling_key(sp: SamplingParams) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(sp):
        v = getattr(sp, f.name)
        if isinstance(f.default, float) and v is not None:
            v = float(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def is_cacheable(req: Request) -> bool:
    """Greedy with one completion: the answer depends on the inputs only."""
    return req.sampling.temperature <= 0 and req.sampling.n == 1


def request_key(engine_digest: str, req: Request) -> str:
    """The cache key of ``req`` for the engine whose identity digest is ``engine_digest``."""
    payload = {
        "v": KEY_VERSION,
        "kind": "generate",
        "engine": engine_digest,
        "messages": [_message_key(m) for m in req.messages],
        "sampling": _sampling_key(req.sampling),
        "lora": lora_digest(req.lora),
    }
    return _sha256(canonical_json(payload))


def embed_key(engine_digest: str, clip: np.ndarray) -> str:
    return _sha256(canonical_json({"v": KEY_VERSION, "kind": "embed", "engine": engine_digest,
                                   "clip": array_digest(clip)}))


# -- values --------------------------------------------------------------------------------------
_COMPLETION_FIELDS = tuple(f.name for f in dataclasses.fields(Completion))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def encode_completions(comps: Sequence[Completion]) -> str:
    """JSON of every field of every completion (dict order kept: top-k stays best first)."""
    return json.dumps({"completions": [{f: getattr(c, f) for f in _COMPLETION_FIELDS}
                                       for c in comps]},
                      separators=(",", ":"), default=_json_default)


def decode_completions(value: str) -> list[Completion]:
    data = json.loads(value)
    return [Completion(**{k: v for k, v in c.items() if k in _COMPLETION_FIELDS})
            for c in data["completions"]]


def encode_embedding(vec: np.ndarray) -> str:
    a = np.ascontiguousarray(vec)
    return json.dumps({"embedding": {"dtype": a.dtype.str, "shape": list(a.shape),
                                     "b64": base64.b64encode(a.tobytes()).decode("ascii")}})


def decode_embedding(value: str) -> np.ndarray:
    d = json.loads(value)["embedding"]
    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


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


# -- the engine wrapper --------------------------------------------------------------------------
@dataclass
class CacheStats:
    """Counters of a :class:`CachedEngine` (cumulative).

    ``model_calls``: inner ``generate`` calls; ``requests_sent``: requests in them;
    ``embed_calls``/``clips_sent``: the same for ``embed_frames``; ``write_errors``: stores
    that failed (the answers were still returned)."""

    hits: int = 0
    misses: int = 0
    uncacheable: int = 0
    model_calls: int = 0
    requests_sent: int = 0
    embed_hits: int = 0
    embed_misses: int = 0
    embed_calls: int = 0
    clips_sent: int = 0
    write_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class CachedEngine(Engine):
    """An engine answering deterministic requests from the response cache (module docstring).

    Any attribute it does not define (``resolved``, ``loaded``, ...) is the inner engine's.
    """

    def __init__(self, inner: Engine, path: Path | str | None = None, enabled: bool = True,
                 compact_every: int = 64) -> None:
        self.inner = inner
        self.enabled = enabled
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.stats = CacheStats()
        self._stats_lock = threading.Lock()
        self.path: Path | None = None
        self.store: ResponseStore | None = None
        self.identity: dict[str, Any] = {}
        self.identity_digest = ""
        if enabled:
            self.path = Path(path) if path is not None else cache_dir() / "responses"
            self.identity = engine_identity(inner)
            self.identity_digest = _sha256(canonical_json(self.identity))
            self.store = ResponseStore(self.path, compact_every=compact_every)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_stats_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stats_lock = threading.Lock()

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for k, v in deltas.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Hits from the cache, misses in one call to the inner engine; request order kept."""
        requests = list(requests)
        if self.store is None:
            self._count(model_calls=1, requests_sent=len(requests))
            return self.inner.generate(requests)
        out: list[Response | None] = [None] * len(requests)
        keys: list[str | None] = []
        todo: list[int] = []
        hits = misses = uncacheable = 0
        for i, req in enumerate(requests):
            if not is_cacheable(req):
                keys.append(None)
                todo.append(i)
                uncacheable += 1
                continue
            key = request_key(self.identity_digest, req)
            keys.append(key)
            value = self.store.get(key)
            if value is None:
                todo.append(i)
                misses += 1
            else:
                out[i] = Response(req.request_id, decode_completions(value))
                hits += 1
        self._count(hits=hits, misses=misses, uncacheable=uncacheable)
        if todo:
            sent = [requests[i] for i in todo]
            self._count(model_calls=1, requests_sent=len(sent))
            got = self.inner.generate(sent)
            if len(got) != len(sent):
                raise EngineError(f"engine {self.name!r} returned {len(got)} responses for "
                                  f"{len(sent)} requests")
            new: dict[str, str] = {}
            for i, resp in zip(todo, got, strict=True):
                out[i] = resp
                new_key = keys[i]
                if new_key is not None:
                    new[new_key] = encode_completions(resp.completions)
            self._save(new.items())
        return [r for r in out if r is not None]

    def _save(self, entries: Iterable[tuple[str, str]]) -> None:
        """Store new entries; a failing cache (disk full, ...) warns and never fails a run."""
        assert self.store is not None
        try:
            self.store.put_many(entries)
        except (OSError, sqlite3.Error) as exc:
            self._count(write_errors=1)
            if self.stats.write_errors == 1:
                warnings.warn(f"response cache {self.path}: cannot store answers "
                              f"({type(exc).__name__}: {exc}); going on without storing",
                              RuntimeWarning, stacklevel=3)

    def embed_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Cached per clip; the clips not in the cache go to the inner engine in one call."""
        if self.store is None or len(clips) == 0:
            if len(clips):
                self._count(embed_calls=1, clips_sent=len(clips))
            return self.inner.embed_frames(clips)
        keys = [embed_key(self.identity_digest, np.asarray(c)) for c in clips]
        rows: list[np.ndarray | None] = []
        todo: list[int] = []
        for i, key in enumerate(keys):
            value = self.store.get(key)
            rows.append(None if value is None else decode_embedding(value))
            if value is None:
                todo.append(i)
        self._count(embed_hits=len(clips) - len(todo), embed_misses=len(todo))
        if todo:
            self._count(embed_calls=1, clips_sent=len(todo))
            got = np.asarray(self.inner.embed_frames([clips[i] for i in todo]))
            if got.shape[0] != len(todo):
                raise EngineError(f"engine {self.name!r} returned {got.shape[0]} embeddings "
                                  f"for {len(todo)} clips")
            self._save([(keys[i], encode_embedding(got[j])) for j, i in enumerate(todo)])
            for j, i in enumerate(todo):
                rows[i] = got[j]
        return np.stack([r for r in rows if r is not None])

    def describe(self) -> dict[str, Any]:
        d = dict(self.inner.describe())
        d["cache"] = {"enabled": self.enabled,
                      "path": str(self.path) if self.path is not None else None,
                      "engine_identity": self.identity_digest[:16] or None}
        return d

    def close(self) -> None:
        try:
            if self.store is not None:
                self.store.close()
        finally:
            self.inner.close()


def wrap_engine(engine: Engine, enabled: bool, path: Path | str | None = None) -> Engine:
    """The engine a run uses: ``engine`` behind the response cache, or (``enabled=False``,
    ``--no-cache``) a pass-through wrapper that records ``cache.enabled = false``."""
    if isinstance(engine, CachedEngine):
        return engine
    return CachedEngine(engine, path=path, enabled=enabled)


def iter_entries(root: Path | str) -> Iterator[tuple[str, str]]:
    """Every (key, value JSON) in the SQLite part of a cache (for inspection and tests)."""
    con = sqlite3.connect(Path(root) / DB_NAME)
    try:
        yield from ((str(k), str(v)) for k, v in con.execute(
            "SELECT key, value FROM responses ORDER BY key"))
    finally:
        con.close()


__all__ = [
    "KEY_VERSION", "CacheStats", "CachedEngine", "ResponseStore", "engine_identity",
    "is_cacheable", "request_key", "wrap_engine", "model_fingerprint", "lora_digest",
    "array_digest",
]
