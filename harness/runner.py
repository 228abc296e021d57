"""One evaluation run, end to end: task -> method (+ engine) -> run store -> metrics -> index.

The flow (``../shared/specs/DESIGN.md``): the task loads its samples; the method and engine
are built and checked against each other and the task before any video is decoded; every
unfinished sample is predicted and its record appended (flushed) to the run store; videos that
cannot be read become error records (fatal with ``strict``); the task pools the records into
metrics; ``metrics.json`` is written and the run is registered in the runs index.

Who predicts is the executor's business (:mod:`harness.executors`): ``local`` (default) runs
one engine and method in this process, ``ray`` runs one per Ray actor. Either way only this
process writes the run store, and the executor and worker count are recorded (``execution``
in config.json and run_info.json) but not compared on ``--resume``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness import index
from harness.cache import wrap_engine
from harness.config import RunConfig
from harness.engines.base import Engine
from harness.registry import ENGINES, METHODS, TASKS
from harness.store import RunStore
from harness.video import VideoError
from methods.base import Method
from tasks.base import Task, VideoSample

PACKAGES = ("vad-eval", "numpy", "scikit-learn", "scipy", "av", "torch", "transformers",
            "tokenizers", "vllm", "ray")
PLUMBING_NOTICE = (
    "NOTICE: {model} is a tiny randomly initialised model: these numbers are a plumbing check, "
    "not a benchmark. Pass --model with a real checkpoint for real numbers."
)


class RunError(RuntimeError):
    """The run cannot start or cannot go on (incompatible parts, unreadable input)."""


@dataclass
class RunResult:
    run_dir: Path
    result: dict[str, Any]
    n_done: int
    n_errors: int
    elapsed_s: float
    notices: list[str] = field(default_factory=list)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict[str, Any]:
    """Commit and dirtiness of the checkout the harness runs from (None outside git)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def dataset_fingerprint(samples: Sequence[VideoSample]) -> str:
    """sha256 over what the protocol scores: ids, frame counts, classes, intervals, and for
    language-side tasks the spans, questions and references."""
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.video_id, s.num_frames, s.category,
                             [list(iv) for iv in s.intervals], s.end_inclusive]).encode())
        if s.queries or s.span is not None:
            h.update(json.dumps([list(s.span) if s.span else None,
                                 [[q.qid, q.prompt, q.category, [list(o) for o in q.options]]
                                  for q in s.queries],
                                 s.references], sort_keys=True, default=str).encode())
    return h.hexdigest()


def build_task(cfg: RunConfig) -> Task:
    cls = TASKS.get(cfg.task)
    try:
        return cls(**cfg.task_args)  # type: ignore[operator,no-any-return]
    except (TypeError, ValueError) as exc:
        raise RunError(f"task {cfg.task!r}: bad task setting in {cfg.task_args}: {exc}") from exc


def build_engine(cfg: RunConfig) -> Engine:
    cls = ENGINES.get(cfg.engine)
    args = {"model": cfg.model, "device": cfg.device, "dtype": cfg.dtype,
            "batch_size": cfg.batch_size, "seed": cfg.seed, "max_pixels": cfg.max_pixels,
            **cfg.engine_args}
    try:
        engine = cls(**args)  # type: ignore[operator]
    except (TypeError, ValueError) as exc:
        raise RunError(f"engine {cfg.engine!r}: bad engine setting: {exc}") from exc
    # the response cache (harness/cache.py): deterministic requests answered from earlier
    # runs; `--no-cache` leaves a pass-through wrapper that records that it was off
    return wrap_engine(engine, enabled=cfg.cache)


def build_method(cfg: RunConfig, engine: Engine | None) -> Method:
    cls = METHODS.get(cfg.method)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise RunError(f"method {cfg.method!r} resolves to {cls!r}, not a Method subclass")
    try:
        return cls(engine, **cfg.method_args)
    except (TypeError, ValueError) as exc:
        raise RunError(f"method {cfg.method!r}: bad method setting: {exc}") from exc


def _run_dir(cfg: RunConfig) -> Path:
    out = Path(cfg.out)
    if cfg.run_name:
        return out / cfg.run_name
    suffix = cfg.digest()
    if cfg.resume and out.is_dir():
        previous = sorted(p for p in out.glob(f"*-{suffix}") if p.is_dir())
        if previous:
            return previous[-1]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    method = cfg.method.replace(":", ".")
    return out / f"{cfg.task}-{method}-{cfg.resolved_split()}-{stamp}-{suffix}"


def run(cfg: RunConfig, progress: bool = True, log: Any = None) -> RunResult:
    """Run (or resume) one evaluation; returns where it went and the metrics."""
    from harness.executors import make_executor

    log = log or sys.stderr
    t0 = time.perf_counter()
    split = cfg.resolved_split()
    task = build_task(cfg)
    method_cls = METHODS.get(cfg.method)
    engine_model = getattr(method_cls, "engine_model", None)
    if engine_model is not None:  # a fine-tuned checkpoint may be the model itself
        model = engine_model(dict(cfg.method_args), cfg.model)
        if model != cfg.model:
            cfg = replace(cfg, model=model)
    if task.kind not in getattr(method_cls, "task_kinds", frozenset()):
        raise RunError(f"method {cfg.method!r} serves task kinds "
                       f"{sorted(getattr(method_cls, 'task_kinds', []))}, task {cfg.task!r} "
                       f"is of kind {task.kind!r}")
    data_root = Path(cfg.data_root) if cfg.data_root else None
    samples = task.load(data_root, split)
    if cfg.limit is not None:
        samples = samples[: cfg.limit]
    if not samples:
        raise RunError(f"task {cfg.task!r} split {split!r} has no samples")

    executor = make_executor(cfg, log)
    try:
        # the engine(s) and method(s), built and checked before any video is decoded
        setup = executor.start(task)
        model_id = setup.model_id or cfg.model
        engine_info = setup.engine_info
        execution = executor.describe()
        run_dir = _run_dir(cfg)
        store = RunStore(run_dir)
        config = {
            "resolved": asdict(cfg) | {"split": split},
            "task": cfg.task, "method": cfg.method, "model": cfg.model, "engine": cfg.engine,
            "split": split, "seed": cfg.seed,
            "method_settings": setup.method_settings,
            "engine_info": engine_info,
            # what must not change on --resume (batch size, executor and workers may: results
            # do not depend on them)
            "engine_identity": {k: engine_info.get(k) for k in ("engine", "model", "family",
                                                                 "dtype", "device")}
            if engine_info else None,
            "protocol": task.protocol(),
            "dataset": {"fingerprint": dataset_fingerprint(samples), "n_samples": len(samples),
                        "data_root": str(data_root) if data_root else None},
            "versions": package_versions(),
            "git": git_state(),
            "command": sys.argv,
            "execution": execution,
        }
        store.open(config, resume=cfg.resume,
                   compare=("task", "method", "model", "split", "seed", "method_settings",
                            "engine_identity", "protocol", "dataset"))
        index.register_run(cfg.out, run_dir, config | {"model": model_id})

        for note in setup.notices:
            print(note, file=log)
        done = store.finished()
        todo = [s for s in samples if s.video_id not in done]
        n_err = 0
        per_video: list[float] = []

        def on_record(record: dict[str, Any], seconds: float) -> None:
            store.append_prediction(record)
            per_video.append(seconds)

        def on_error(sample: VideoSample, exc: VideoError, seconds: float) -> None:
            nonlocal n_err
            n_err += 1
            store.append_error({"video_id": sample.video_id, "path": exc.path,
                                "reason": exc.reason, "time": time.time()})
            if cfg.strict:
                raise RunError(f"video {sample.video_id}: {exc} (--strict)") from exc
            print(f"warning: skipping {sample.video_id}: {exc}", file=log)
            per_video.append(seconds)

        bar = _progress(len(todo), f"{cfg.task}/{cfg.method}", progress, log)
        try:
            executor.run(todo, on_record, on_error, bar)
        finally:
            bar.close()
    finally:
        executor.close()

    predictions = store.predictions()
    evaluated = task.evaluate(samples, predictions)
    failed = sorted({e["video_id"] for e in store.errors()} - set(predictions))
    result = {
        "task": cfg.task, "method": cfg.method, "model": model_id,
        "split": split, **evaluated,
        "errors": {"n_videos": len(failed), "videos": failed},
    }
    summary = METHODS.get(cfg.method).summarize(  # type: ignore[attr-defined]
        [predictions[s.video_id] for s in samples if s.video_id in predictions])
    if summary:
        result["method_summary"] = summary
    store.write_metrics(result)
    elapsed = time.perf_counter() - t0
    store.write_info({"elapsed_s": elapsed, "videos_this_session": len(per_video),
                      "mean_s_per_video": float(np.mean(per_video)) if per_video else None,
                      "errors_this_session": n_err, "finished_at": time.time(),
                      "execution": execution,
                      "cache": getattr(executor, "cache_stats", None)})
    index.register_run(cfg.out, run_dir, config | {"model": model_id},
                       status="done", metrics=result.get("metrics"))
    return RunResult(run_dir, result, len(predictions), len(failed), elapsed,
                     list(setup.notices))


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool, log: Any) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="video", file=log, dynamic_ncols=True)
