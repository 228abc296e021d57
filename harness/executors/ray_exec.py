"""The Ray executor: ``workers`` Ray actors, each with its own engine and method.

* **Workers.** Each actor builds its own task, engine and method from the pickled
  :class:`RunConfig` (engines and models never cross processes) and asks Ray for
  ``worker_cpus`` CPUs. When the method needs a local engine and the cluster has GPUs, each
  actor also asks for its own GPU(s): one engine per GPU, or ``tensor_parallel_size x
  pipeline_parallel_size`` GPUs when those engine settings are given (tensor parallelism stays
  inside the engine). ``device=cpu``, engine classes with ``uses_gpu = False`` (remote APIs) and
  methods without an engine ask for no GPU.
* **Work distribution.** Pull model: each worker holds at most one sample (one chunk of
  ``batch_size`` samples for a method that sets ``batches_samples``, predicted together);
  when it returns its results the driver hands it the next. A slow video keeps one worker busy
  and the others go on.
* **Results.** Records and error records stream back to the driver as they finish
  (``ray.wait``); only the driver writes the run store. An unreadable video is an error record
  and its worker goes on. An exception in a method ends the run as it does locally (re-raised
  in the driver with its own type). A worker that dies (killed, out of memory) is reported
  with the sample(s) it held; the other workers finish their work, then the run stops with an
  error naming what is left, to be retried with ``--resume``.
* **Ray itself.** With ``ray_address`` the driver joins that cluster; otherwise it starts a
  local Ray instance sized ``ceil(workers * worker_cpus)`` CPUs (GPUs detected) without the
  dashboard, and shuts it down at the end. A Ray instance the caller already started
  (``ray.is_initialized()``) is used as is and left running.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from harness.config import RunConfig
from harness.executors.base import (
    Executor,
    OnError,
    OnRecord,
    Progress,
    Worker,
    WorkerSetup,
)
from harness.registry import ENGINES, METHODS
from harness.runner import RunError, build_task
from harness.store import dumps
from harness.video import VideoError
from tasks.base import Task, VideoSample

RAY_PIN = "ray==2.60.0"
#: seconds without any result after which the driver says which workers hold which samples
STALL_REPORT_S = 300.0
#: seconds a worker gets to close its engine at the end of a run before it is killed
CLOSE_TIMEOUT_S = 60.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RunError(f"--executor ray needs Ray, which is not installed "
                       f"(pip install '{RAY_PIN}')") from exc
    return ray


class _RayWorker:
    """The actor: one :class:`Worker` in its own process (wrapped by ``ray.remote`` lazily)."""

    def __init__(self) -> None:
        self.worker: Worker | None = None

    def setup(self, cfg: RunConfig, cwd: str) -> tuple[WorkerSetup, dict[str, Any]]:
        import ray

        if os.path.isdir(cwd):  # relative paths in the config mean what they mean to the driver
            os.chdir(cwd)
        task = build_task(cfg)
        self.worker = Worker(cfg, task)
        ctx = ray.get_runtime_context()
        where = {"node": ray.util.get_node_ip_address(), "pid": os.getpid(),
                 "gpu_ids": [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]}
        return self.worker.setup, where

    def predict(self, samples: list[VideoSample]) -> list[tuple[str, Any, float]]:
        """Per sample, in order: ``("record", record, seconds)`` or ``("error", (path,
        reason), seconds)``. A method that batches samples gets them in one call."""
        worker = self.worker
        assert worker is not None, "setup() first"
        if worker.method.batches_samples:
            results = worker.timed_predict_many(samples)
        else:
            results = [worker.timed_predict(s) for s in samples]
        out: list[tuple[str, Any, float]] = []
        for record, error, seconds in results:
            if error is not None:  # plain data: VideoError's constructor does not round-trip
                out.append(("error", (error.path, error.reason), seconds))
            else:
                out.append(("record", record, seconds))
        return out

    def close(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()


def _unwrap(exc: BaseException) -> BaseException:
    """The original exception of a Ray task error (so the CLI maps it as it would locally)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RayExecutor(Executor):
    """See the module docstring."""

    name = "ray"

    def __init__(self, cfg: RunConfig, log: Any) -> None:
        super().__init__(cfg, log)
        self.actors: list[Any] = []
        self.where: list[dict[str, Any]] = []
        self.gpus_per_worker = 0
        self._started_ray = False
        self._clean = False
        self._ray: Any = None

    # -- setup ------------------------------------------------------------------------------
    def _init_ray(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        t0 = time.perf_counter()
        if self.cfg.ray_address:
            ray.init(address=self.cfg.ray_address, logging_level="warning")
            what = f"joined the Ray cluster at {self.cfg.ray_address}"
        else:
            cpus = max(1, math.ceil(self.cfg.workers * self.cfg.worker_cpus))
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level="warning")
            what = f"started a local Ray instance with {cpus} CPU(s)"
        self._started_ray = True
        print(f"ray: {what} in {time.perf_counter() - t0:.1f} s", file=self.log)

    def _gpus_per_worker(self, cluster: dict[str, float]) -> int:
        cfg = self.cfg
        needs = METHODS.get(cfg.method).needs  # type: ignore[attr-defined]
        if not needs.engine or cfg.device == "cpu" or not cluster.get("GPU", 0):
            return 0
        if not getattr(ENGINES.get(cfg.engine), "uses_gpu", True):
            return 0
        per = 1
        for key in ("tensor_parallel_size", "pipeline_parallel_size"):
            try:
                per *= max(1, int(cfg.engine_args.get(key, 1)))
            except (TypeError, ValueError) as exc:
                raise RunError(f"--engine-arg {key}: expected an integer, "
                               f"got {cfg.engine_args.get(key)!r}") from exc
        return per

    def _check_resources(self, cluster: dict[str, float]) -> None:
        """Fail now rather than wait forever for resources the cluster does not have."""
        cfg = self.cfg
        cpus = cfg.workers * cfg.worker_cpus
        if cpus > cluster.get("CPU", 0) + 1e-9:
            raise RunError(f"--workers {cfg.workers} x --worker-cpus {cfg.worker_cpus:g} = "
                           f"{cpus:g} CPUs, but the Ray cluster has {cluster.get('CPU', 0):g}")
        gpus = cfg.workers * self.gpus_per_worker
        if gpus > cluster.get("GPU", 0):
            raise RunError(f"--workers {cfg.workers} needs {gpus} GPUs ({self.gpus_per_worker} "
                           f"per worker: one engine per GPU), but the Ray cluster has "
                           f"{cluster.get('GPU', 0):g}; lower --workers")

    def start(self, task: Task) -> WorkerSetup:
        self._ray = ray = _import_ray()
        self._init_ray()
        cluster = ray.cluster_resources()
        self.gpus_per_worker = self._gpus_per_worker(cluster)
        self._check_resources(cluster)
        actor_cls = ray.remote(_RayWorker)
        self.actors = [actor_cls.options(num_cpus=self.cfg.worker_cpus,
                                         num_gpus=self.gpus_per_worker, max_restarts=0,
                                         max_task_retries=0).remote()
                       for _ in range(self.cfg.workers)]
        refs = [a.setup.remote(self.cfg, os.getcwd()) for a in self.actors]
        results = self._gather_setups(refs)
        setups = [r[0] for r in results]
        self.where = [r[1] for r in results]
        first = setups[0]
        for i, s in enumerate(setups[1:], 1):
            if dumps(s.identity()) != dumps(first.identity()):
                raise RunError(f"ray workers 0 and {i} built different engines or methods: "
                               f"{first.identity()} vs {s.identity()}")
        if hasattr(task, "window_spec") and first.window is not None:
            task.window_spec = first.window  # what the workers' methods really use
        return first

    def _gather_setups(self, refs: list[Any]) -> list[tuple[WorkerSetup, dict[str, Any]]]:
        ray = self._ray
        t0 = time.perf_counter()
        pending = dict(zip(refs, range(len(refs)), strict=True))
        out: dict[int, tuple[WorkerSetup, dict[str, Any]]] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=60.0)
            if not ready:
                print(f"ray: waiting for worker(s) {sorted(pending.values())} to start and load "
                      f"their engines ({time.perf_counter() - t0:.0f} s)", file=self.log)
                continue
            i = pending.pop(ready[0])
            try:
                out[i] = ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:
                raise RunError(f"ray worker {i} died while starting: {_first_line(exc)}"
                               ) from exc
            except ray.exceptions.RayTaskError as exc:
                raise _unwrap(exc) from exc
        return [out[i] for i in range(len(refs))]

    # -- the run ----------------------------------------------------------------------------
    def run(self, todo: Sequence[VideoSample], on_record: OnRecord, on_error: OnError,
            bar: Progress) -> None:
        ray = self._ray
        queue = deque(todo)
        batches = getattr(METHODS.get(self.cfg.method), "batches_samples", False)
        size = max(1, self.cfg.batch_size) if batches else 1  # samples a worker holds at once
        # ref -> worker, samples, since
        pending: dict[Any, tuple[int, list[VideoSample], float]] = {}
        died: dict[int, tuple[list[str], str]] = {}  # worker -> (sample ids it held, reason)

        def hand_out(i: int) -> None:
            if queue:
                chunk = [queue.popleft() for _ in range(min(size, len(queue)))]
                ref = self.actors[i].predict.remote(chunk)
                pending[ref] = (i, chunk, time.perf_counter())

        def ids(chunk: list[VideoSample]) -> str:
            return ", ".join(s.video_id for s in chunk)

        for i in range(len(self.actors)):
            hand_out(i)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=STALL_REPORT_S)
            if not ready:
                now = time.perf_counter()
                held = ", ".join(f"worker {i}: {ids(c)} ({now - t:.0f} s)"
                                 for i, c, t in pending.values())
                print(f"ray: no result for {STALL_REPORT_S:.0f} s; {held}", file=self.log)
                continue
            ref = ready[0]
            i, chunk, _ = pending.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                died[i] = ([s.video_id for s in chunk], _first_line(exc))
                print(f"ray: worker {i} died while predicting {ids(chunk)}: "
                      f"{_first_line(exc)}", file=self.log)
                continue  # the worker gets no more samples; the others go on
            except ray.exceptions.RayTaskError as exc:
                raise _unwrap(exc) from exc
            for sample, (kind, payload, seconds) in zip(chunk, results, strict=True):
                if kind == "error":
                    path, reason = payload
                    on_error(sample, VideoError(path, reason), seconds)
                else:
                    on_record(payload, seconds)
                bar.update(1)
            hand_out(i)
        self._clean = True  # the surviving workers may close their engines gracefully
        if died:
            lost = sorted(v for vs, _ in died.values() for v in vs) + [s.video_id for s in queue]
            detail = "; ".join(f"worker {i} while predicting {', '.join(vs)} ({why})"
                               for i, (vs, why) in sorted(died.items()))
            raise RunError(f"{len(died)} ray worker(s) died: {detail}. Finished videos are "
                           f"saved; rerun with --resume to predict the {len(lost)} unfinished "
                           f"video(s): {lost}")

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        ray, actors, self.actors = self._ray, self.actors, []
        if ray is None:
            return
        try:
            if actors and self._clean:  # let engines shut down cleanly (vLLM), then kill
                refs = [a.close.remote() for a in actors]
                ray.wait(refs, num_returns=len(refs), timeout=CLOSE_TIMEOUT_S)
            for a in actors:
                ray.kill(a)
        finally:
            if self._started_ray:
                self._started_ray = False
                ray.shutdown()

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        ray = self._ray
        out["ray"] = {
            "version": getattr(ray, "__version__", None),
            "started_here": self._started_ray,
            "gpus_per_worker": self.gpus_per_worker,
            "workers": self.where,
        }
        return out
