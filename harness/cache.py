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

import dataclasses
import json
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.cache_keys import (  # noqa: F401  (the cache's public names live here too)
    KEY_VERSION,
    VOLATILE_KEYS,
    _json_default,
    _sha256,
    array_digest,
    canonical_json,
    decode_completions,
    decode_embedding,
    embed_key,
    encode_completions,
    encode_embedding,
    engine_identity,
    is_cacheable,
    lora_digest,
    model_fingerprint,
    record_key,
    request_key,
)
from harness.cache_store import DB_NAME, LOG_DIR, ResponseStore, iter_entries, read_log  # noqa: F401
from harness.engines.base import (
    Engine,
    EngineError,
    Request,
    Response,
)
from harness.paths import cache_dir


# -- the engine wrapper --------------------------------------------------------------------------
@dataclass
class CacheStats:
    """Counters of a :class:`CachedEngine` (cumulative).

    ``model_calls``: inner ``generate`` calls; ``requests_sent``: requests in them;
    ``embed_calls``/``clips_sent``: the same for ``embed_frames``; ``write_errors``: stores
    that failed (the answers were still returned); ``record_hits``/``record_misses``: whole
    prediction records reused or not (:meth:`CachedEngine.get_record`)."""

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
    record_hits: int = 0
    record_misses: int = 0

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

    def get_record(self, key: str) -> dict[str, Any] | None:
        """A stored prediction record (see :func:`harness.cache_keys.record_key`), or None."""
        if self.store is None:
            return None
        value = self.store.get(key)
        self._count(record_hits=value is not None, record_misses=value is None)
        return json.loads(value) if value is not None else None

    def put_record(self, key: str, record: dict[str, Any]) -> None:
        """Store a method's prediction record for one sample."""
        if self.store is not None:
            self._save([(key, json.dumps(record, sort_keys=True, default=_json_default))])

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

    def visual_tokens(self, clips: Sequence[np.ndarray]) -> list[Any]:
        """Not cached (tensors on the model's device): the inner engine's."""
        return self.inner.visual_tokens(clips)

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


__all__ = [
    "KEY_VERSION", "CacheStats", "CachedEngine", "ResponseStore", "engine_identity",
    "is_cacheable", "request_key", "wrap_engine", "model_fingerprint", "lora_digest",
    "array_digest",
]
