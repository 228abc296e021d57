"""Cost of a cached re-run: the frozen baseline on 4 videos of the ``ucf_crime`` sample split
(tiny Qwen2-VL, CPU), run twice behind the response cache (a fresh cache folder), the second
time as a new run (a new :class:`~harness.cache.CachedEngine` over the same cache folder, no
resume). ``cached_rerun_cost`` is the second run's time over the first's (goal < 0.05: the
cache must make a re-run nearly free); the second run must make 0 model calls.

The runs call the method directly (``method.predict`` on every sample, the runner's loop
without its run store), with the model loaded once beforehand: the load costs both runs the
same and is not what the cache saves. Video decoding is not cached, so it is the floor of
the ratio. When :func:`harness.runner.run` wraps its engine with
:func:`harness.cache.wrap_engine`, two whole runner runs (model load, run store and metrics
included) are timed as well (``cached_rerun_cost.runner``).
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


def _direct(cache: Path) -> dict[str, Any]:
    from harness.cache import CachedEngine
    from harness.engines.hf import HFEngine
    from harness.registry import TASKS
    from methods.base import RunContext
    from methods.frozen import FrozenBaseline

    task: Any = TASKS.get("ucf_crime")()  # type: ignore[operator]
    samples = task.load(None, "sample")[:LIMIT]
    hf = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=8)
    out: dict[str, Any] = {"samples": len(samples), "times": [], "stats": [], "records": []}
    for _ in range(2):
        eng = CachedEngine(hf, cache)
        method = FrozenBaseline(eng)
        ctx = RunContext(seed=0, batch_size=8, window=method.window_spec(task.window_spec))
        t0 = time.perf_counter()
        records = [method.predict(s, ctx) for s in samples]
        assert eng.store is not None
        eng.store.close()  # what the run's close() does to the cache (the model stays loaded)
        out["times"].append(time.perf_counter() - t0)
        out["stats"].append(eng.stats.as_dict())
        out["records"].append(json.dumps(records, sort_keys=True))
    hf.close()
    return out


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
        res = _direct(Path(tmp) / "responses")
        t1, t2 = res["times"]
        s1, s2 = res["stats"]
        ratio = t2 / t1
        same = res["records"][0] == res["records"][1]
        emit("cached_rerun_cost", ratio, "ratio", f"< {GOAL}", ratio < GOAL and same,
             first_s=round(t1, 3), second_s=round(t2, 3), videos=res["samples"],
             model_calls_second=s2["model_calls"], embed_calls_second=s2["embed_calls"],
             requests_first=s1["requests_sent"], hits_second=s2["hits"],
             identical_records=same, via="frozen.predict + CachedEngine")
        emit("cached_rerun_model_calls", s2["model_calls"] + s2["embed_calls"], "calls", "== 0",
             s2["model_calls"] + s2["embed_calls"] == 0)
        if _runner_wraps():
            runner_tmp = Path(tmp) / "runner"
            old = os.environ.get("VAD_EVAL_CACHE")
            # the runner's cache goes under cache_dir(): point it at a fresh folder, keeping
            # the sample world and tiny model already built (a symlink each)
            root = Path(old) if old else Path.home() / ".cache" / "vad-eval"
            fresh = runner_tmp / "cache_root"
            fresh.mkdir(parents=True)
            for child in ("sample_world", "models"):
                if (root / child).exists():
                    (fresh / child).symlink_to(root / child)
            os.environ["VAD_EVAL_CACHE"] = str(fresh)
            try:
                r1, r2, info = _via_runner(runner_tmp)
            finally:
                if old is None:
                    os.environ.pop("VAD_EVAL_CACHE", None)
                else:
                    os.environ["VAD_EVAL_CACHE"] = old
            emit("cached_rerun_cost.runner", r2 / r1, "ratio", "reference", None,
                 first_s=round(r1, 3), second_s=round(r2, 3),
                 cache_info_second=(info or {}).get("cache"))


if __name__ == "__main__":
    main()
