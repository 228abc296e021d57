"""The executor interface and the per-process worker it drives.

A :class:`Worker` is what one process needs to predict samples: the engine (if the method
needs one), the method and the run context, all built from the :class:`RunConfig`. The local
executor builds one worker in the driver process; the Ray executor builds one per actor (engines
and models never cross process boundaries: each actor loads its own).

An :class:`Executor` is used by the runner in three steps::

    setup = executor.start(task)         # build the worker(s); returns what they built
    executor.run(todo, on_record, on_error, bar)
    executor.close()                     # release engines, actors, a Ray instance it started

Only the driver (the runner) writes to the run store: executors hand every finished sample to
``on_record(record, seconds)`` and every unreadable one to ``on_error(sample, error, seconds)``,
in the order they finish. Metrics never depend on that order (the task pools records by id).
Whatever ``on_error`` raises (``--strict``) ends the run.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TextIO

import numpy as np

from harness.cache import CachedEngine, record_key
from harness.config import RunConfig
from harness.engines.base import Engine
from harness.registry import METHODS
from harness.runner import PLUMBING_NOTICE, RunError, build_engine, build_method
from harness.video import VideoError
from methods.base import Method, RunContext
from tasks.base import Task, VideoSample
from tasks.windows import WindowSpec

OnRecord = Callable[[dict[str, Any], float], None]
OnError = Callable[[VideoSample, VideoError, float], None]

#: engine_info keys that must agree between workers (the keys ``--resume`` compares)
IDENTITY_KEYS = ("engine", "model", "family", "dtype", "device")


class Progress(Protocol):
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class WorkerSetup:
    """What a worker built, recorded in the run's config (equal across workers).

    Attributes:
        engine_info: the engine's :meth:`Engine.describe` (``None``: the method has no engine).
        method_settings: the method's :meth:`Method.describe`.
        window: the window grid the method really uses (frame tasks), else ``None``.
        model_id: the resolved model id (``None`` without an engine).
        notices: lines to print before the run (the tiny-model notice).
    """

    engine_info: dict[str, Any] | None
    method_settings: dict[str, Any]
    window: WindowSpec | None
    model_id: str | None
    notices: list[str] = field(default_factory=list)

    def identity(self) -> dict[str, Any]:
        """The parts that must be equal between the workers of one run."""
        info = self.engine_info
        return {"engine": {k: info.get(k) for k in IDENTITY_KEYS} if info else None,
                "method": self.method_settings,
                "window": dataclasses.asdict(self.window) if self.window else None,
                "model_id": self.model_id}


class Worker:
    """Engine + method + run context of one process, built from ``cfg`` for ``task``.

    Builds the engine (when the method needs one) and checks it against the method, builds the
    method, and sets ``task.window_spec`` to the grid the method uses (frame tasks). Raises
    :class:`RunError` when the parts do not fit.
    """

    cache_stats: dict[str, Any] | None = None

    def __init__(self, cfg: RunConfig, task: Task) -> None:
        method_cls = METHODS.get(cfg.method)
        needs = method_cls.needs  # type: ignore[attr-defined]
        notices: list[str] = []
        self.engine: Engine | None = None
        if needs.engine:
            self.engine = build_engine(cfg)
            problems = needs.check(self.engine.capabilities, self.engine.name)
            if problems:
                self.close()
                raise RunError(f"method {cfg.method!r} cannot run on this engine: "
                               + "; ".join(problems))
            resolved = getattr(self.engine, "resolved", None)
            if resolved is not None and getattr(resolved, "is_tiny", False):
                notices.append(PLUMBING_NOTICE.format(model=resolved.id))
        try:
            self.method: Method = build_method(cfg, self.engine)
        except BaseException:
            self.close()
            raise
        window = None
        if hasattr(task, "window_spec"):  # the grid the method will really use is the protocol's
            window = self.method.window_spec(task.window_spec)
            task.window_spec = window
        ctx = RunContext(seed=cfg.seed, batch_size=cfg.batch_size, max_pixels=cfg.max_pixels)
        if window is not None:
            ctx.window = window
        ctx.frame_plan = getattr(task, "frame_plan", None)
        self.ctx = ctx
        resolved = getattr(self.engine, "resolved", None)
        self.setup = WorkerSetup(
            engine_info=self.engine.describe() if self.engine is not None else None,
            method_settings=self.method.describe(),
            window=window,
            model_id=getattr(resolved, "id", None),
            notices=notices,
        )
        np.random.seed(cfg.seed)

    def predict(self, sample: VideoSample) -> dict[str, Any]:
        """The method's record for ``sample``; raises :class:`VideoError` for a video that
        cannot be read (the task already knows some are unreadable: ``extra["unreadable"]``).

        With the response cache on and a method that says its record is deterministic, a
        record stored by an earlier run with the same code, engine, settings, context and
        video is reused without decoding the video (:func:`harness.cache_keys.record_key`).
        """
        if sample.extra.get("unreadable"):
            raise VideoError(sample.path, str(sample.extra["unreadable"]))
        engine = self.engine
        if not (isinstance(engine, CachedEngine) and engine.store is not None
                and self.method.deterministic(sample)):
            return self.method.predict(sample, self.ctx)
        key = record_key(engine.identity_digest, self.setup.method_settings,
                         self._context_key(), sample)
        record = engine.get_record(key)
        if record is None:
            record = self.method.predict(sample, self.ctx)
            engine.put_record(key, record)
        return record

    def _context_key(self) -> dict[str, Any]:
        ctx = self.ctx
        return {"seed": ctx.seed, "max_pixels": ctx.max_pixels,
                "window": dataclasses.asdict(ctx.window),
                "frame_plan": dataclasses.asdict(ctx.frame_plan) if ctx.frame_plan else None}

    def timed_predict(self, sample: VideoSample) -> tuple[dict[str, Any] | None,
                                                          VideoError | None, float]:
        """``(record, None, seconds)`` or ``(None, error, seconds)`` for an unreadable video."""
        t0 = time.perf_counter()
        try:
            record = self.predict(sample)
        except VideoError as exc:
            return None, exc, time.perf_counter() - t0
        return record, None, time.perf_counter() - t0

    def predict_many(self, samples: Sequence[VideoSample]) -> list[dict[str, Any] | VideoError]:
        """The records of ``samples`` predicted together (:meth:`Method.predict_many`): one
        entry per sample in order, its record or its :class:`VideoError`. Unreadable samples,
        cached records and the cache's bookkeeping work as in :meth:`predict`, per sample."""
        out: list[dict[str, Any] | VideoError] = []
        for record, error, _ in self.timed_predict_many(samples):
            if error is not None:
                out.append(error)
            else:
                assert record is not None
                out.append(record)
        return out

    def timed_predict_many(self, samples: Sequence[VideoSample],
                           ) -> list[tuple[dict[str, Any] | None, VideoError | None, float]]:
        """``(record, None, seconds)`` or ``(None, error, seconds)`` per sample, in order.

        Samples the task knows to be unreadable get their :class:`VideoError` without reaching
        the method. With the response cache on, a deterministic sample's stored record is
        reused (the key :meth:`predict` uses); all other samples go to
        :meth:`Method.predict_many` in one call and its new records are stored. ``seconds``:
        the method call's wall time divided evenly over the samples it predicted (plus each
        one's cache look-up); a reused record or an unreadable sample counts its own time.
        """
        engine = self.engine
        cached = isinstance(engine, CachedEngine) and engine.store is not None
        results: list[dict[str, Any] | VideoError | None] = [None] * len(samples)
        seconds = [0.0] * len(samples)
        keys: dict[int, str] = {}
        misses: list[int] = []
        for i, sample in enumerate(samples):
            t0 = time.perf_counter()
            if sample.extra.get("unreadable"):
                results[i] = VideoError(sample.path, str(sample.extra["unreadable"]))
            elif cached and self.method.deterministic(sample):
                assert isinstance(engine, CachedEngine)
                key = record_key(engine.identity_digest, self.setup.method_settings,
                                 self._context_key(), sample)
                record = engine.get_record(key)
                if record is not None:
                    results[i] = record
                else:
                    keys[i] = key
                    misses.append(i)
            else:
                misses.append(i)
            seconds[i] = time.perf_counter() - t0
        if misses:
            t0 = time.perf_counter()
            predicted = self.method.predict_many([samples[i] for i in misses], self.ctx)
            share = (time.perf_counter() - t0) / len(misses)
            if len(predicted) != len(misses):
                raise RuntimeError(f"method {self.method.name!r}: predict_many returned "
                                   f"{len(predicted)} results for {len(misses)} samples")
            for i, result in zip(misses, predicted, strict=True):
                if not isinstance(result, (dict, VideoError)):
                    raise TypeError(f"method {self.method.name!r}: predict_many gave a "
                                    f"{type(result).__name__} for {samples[i].video_id!r}; "
                                    f"expected a record (dict) or a VideoError")
                if i in keys and isinstance(result, dict):
                    assert isinstance(engine, CachedEngine)
                    engine.put_record(keys[i], result)
                results[i] = result
                seconds[i] += share
        out: list[tuple[dict[str, Any] | None, VideoError | None, float]] = []
        for got, secs in zip(results, seconds, strict=True):
            if isinstance(got, VideoError):
                out.append((None, got, secs))
            else:
                assert got is not None
                out.append((got, None, secs))
        return out

    def close(self) -> None:
        engine, self.engine = getattr(self, "engine", None), None
        if engine is not None and hasattr(engine, "stats"):
            self.cache_stats = engine.stats.as_dict()  # the response cache's hits and calls
        if engine is not None and hasattr(engine, "close"):
            engine.close()


class Executor(abc.ABC):
    """Runs a :class:`Worker` per process over the samples still to do. See module docstring."""

    name: ClassVar[str] = "executor"

    def __init__(self, cfg: RunConfig, log: TextIO) -> None:
        self.cfg = cfg
        self.log = log

    @abc.abstractmethod
    def start(self, task: Task) -> WorkerSetup:
        """Build the worker(s) and check them; sets ``task.window_spec`` like :class:`Worker`.

        Raises:
            RunError: incompatible parts, workers that disagree, unavailable resources.
        """

    @abc.abstractmethod
    def run(self, todo: Sequence[VideoSample], on_record: OnRecord, on_error: OnError,
            bar: Progress) -> None:
        """Predict every sample of ``todo``; calls ``on_record`` / ``on_error`` in the driver
        as samples finish and ``bar.update(1)`` after each."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`start` built. Safe to call more than once."""

    def describe(self) -> dict[str, Any]:
        """How the run is executed (recorded in config.json and run_info.json)."""
        return self.cfg.execution()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
