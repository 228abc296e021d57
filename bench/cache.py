"""Cost of a cached re-run: the frozen baseline on 4 videos of the ``ucf_crime`` sample split
(tiny Qwen2-VL, CPU), run twice behind the response cache (a fresh cache folder), the second
time as a new run (a new :class:`~harness.cache.CachedEngine` over the same cache folder, no
resume). ``cached_rerun_cost`` is the second run's time over the first's (goal < 0.05: the
cache must make a re-run nearly free); the second run must make 0 model calls.

The runs time the run loop's worker (:class:`harness.executors.base.Worker`: the engine the
runner builds, wrapped by the response cache, and the method) predicting every sample; the
model load and the task's loading are not timed: they cost both runs the same and are not
what the cache saves. The second run reuses the stored prediction records of the frozen
method (deterministic: greedy), so it neither decodes videos nor calls the model. Two whole
runner runs (model load, run store and metrics included) are timed as well
(``cached_rerun_cost.runner``, for reference).
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit

LIMIT = 4
GOAL = 0.05


def _worker_passes() -> dict[str, Any]:
    """Two passes of the run loop's worker (engine + method + response cache, as built by the
    runner for every executor) over the same samples; the model load is not timed."""
    from harness.config import RunConfig
    from harness.executors.base import Worker
    from harness.runner import build_task

    cfg = RunConfig(method="frozen", task="ucf_crime", split="sample", limit=LIMIT,
                    device="cpu", batch_size=8)
    out: dict[str, Any] = {"times": [], "stats": [], "records": []}
    for _ in range(2):
        task = build_task(cfg)
        samples = task.load(None, "sample")[:LIMIT]
        worker = Worker(cfg, task)
        t0 = time.perf_counter()
        records = [worker.predict(s) for s in samples]
        out["times"].append(time.perf_counter() - t0)
        worker.close()
        out["stats"].append(worker.cache_stats or {})
        out["records"].append(json.dumps(records, sort_keys=True))
        out["samples"] = len(samples)
    return out


class _FreshCache:
    """Point ``cache_dir()`` at a new folder for the responses, keeping the sample world and
    the tiny models already built (a symlink each)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.old = os.environ.get("VAD_EVAL_CACHE")

    def __enter__(self) -> Path:
        root = Path(self.old) if self.old else Path.home() / ".cache" / "vad-eval"
        fresh = self.tmp / "cache_root"
        fresh.mkdir(parents=True)
        for child in ("sample_world", "models"):
            if (root / child).exists():
                (fresh / child).symlink_to(root / child)
        os.environ["VAD_EVAL_CACHE"] = str(fresh)
        return fresh

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            os.environ.pop("VAD_EVAL_CACHE", None)
        else:
            os.environ["VAD_EVAL_CACHE"] = self.old


def _runner_wraps() -> bool:
    import harness.runner

    return "wrap_engine" in inspect.getsource(harness.runner)


def _via_runner(tmp: Path) -> tuple[float, float, Any]:
    from harness.config import RunConfig
    from harness.runner import run

    times = []
    info: Any = None
    for name in ("first", "second"):
        cfg = RunConfig(method="frozen", task="ucf_crime", split="sample", limit=LIMIT,
                        out=str(tmp / "runs"), run_name=name, device="cpu")
        t0 = time.perf_counter()
        res = run(cfg, progress=False, log=open(os.devnull, "w"))  # noqa: SIM115
        times.append(time.perf_counter() - t0)
        info = json.loads((res.run_dir / "run_info.json").read_text())
    return times[0], times[1], info


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with _FreshCache(Path(tmp) / "worker"):
            res = _worker_passes()
        t1, t2 = res["times"]
        s1, s2 = res["stats"]
        ratio = t2 / t1
        same = res["records"][0] == res["records"][1]
        emit("cached_rerun_cost", ratio, "ratio", f"< {GOAL}", ratio < GOAL and same,
             first_s=round(t1, 3), second_s=round(t2, 3), videos=res["samples"],
             model_calls_second=s2.get("model_calls"), embed_calls_second=s2.get("embed_calls"),
             record_hits_second=s2.get("record_hits"), requests_first=s1.get("requests_sent"),
             identical_records=same, via="the run loop's worker (frozen, hf, response cache)")
        calls = s2.get("model_calls", 0) + s2.get("embed_calls", 0)
        emit("cached_rerun_model_calls", calls, "calls", "== 0", calls == 0)
        if _runner_wraps():
            with _FreshCache(Path(tmp) / "runner"):
                r1, r2, info = _via_runner(Path(tmp) / "runner")
            emit("cached_rerun_cost.runner", r2 / r1, "ratio", "reference", None,
                 first_s=round(r1, 3), second_s=round(r2, 3),
                 cache_info_second=(info or {}).get("cache"))


if __name__ == "__main__":
    main()
