"""Anom-π's cost on the sample world (one run, tiny Qwen2-VL, CPU).

* ``anom_pi.train_s``: ``vad-eval train --method anom-pi --task ucf_crime`` with the tiny preset
  (the issue's limit: 10 minutes on this 2-core machine).
* ``anom_pi.batched_rollout_speedup``: wall time of reviewing the sample test videos one at a
  time over reviewing them together (one engine call per turn for all of them), with the same
  greedy trajectories (``same_trajectories``: actions, outputs and windows equal, confidences
  within 1e-5) (goal > 1: batching across videos pays).
* ``anom_pi.turns_per_s``: policy turns per second in the batched review (info).
* ``anom_pi.active_over_passive``: wall time of the active review over the passive baseline's
  single view of the same frame budget (info: what being active costs).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit
from harness.engines.hf import HFEngine
from harness.registry import TASKS
from harness.training import TrainJob
from methods.anom_pi.method import AnomPiMethod, AnomPiPassive
from methods.anom_pi.train import train_anom_pi
from methods.base import RunContext


def _same_steps(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Same actions, outputs and windows; confidences equal within 1e-5 (a padded batch
    changes the float sums in the last digits)."""
    def key(steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(s.get("kind"), s.get("action"), s.get("output"), s.get("text"),
                 s.get("window")) for s in steps]

    confs = [(x.get("confidence"), y.get("confidence")) for x, y in zip(a, b, strict=False)]
    return key(a) == key(b) and all(
        (p is None) == (q is None) and (p is None or abs(p - q) < 1e-5) for p, q in confs)


def main() -> None:
    samples = TASKS.get("ucf_crime")().load(None, "sample")  # type: ignore[operator]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_anom_pi(TrainJob(method="anom-pi", task="ucf_crime", out=Path(tmp) / "ckpt",
                               split="sample"))
        train_s = time.perf_counter() - t0
    emit("anom_pi.train_s", train_s, "s", "< 600", train_s < 600)
    engine = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=16)
    ctx = RunContext(batch_size=16)
    active, passive = AnomPiMethod(engine), AnomPiPassive(engine)
    active.predict(samples[0], ctx)  # warm-up
    t0 = time.perf_counter()
    one = [active.predict(s, ctx) for s in samples]
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = active.predict_many(samples, ctx)
    t_many = time.perf_counter() - t0
    t0 = time.perf_counter()
    passive.predict_many(samples, ctx)
    t_passive = time.perf_counter() - t0
    engine.close()
    same = all(isinstance(b, dict) and _same_steps(a["review"]["steps"], b["review"]["steps"])
               for a, b in zip(one, many, strict=True))
    turns = sum(r["review"]["turns"] for r in one)
    emit("anom_pi.batched_rollout_speedup", t_one / t_many, "ratio", "> 1", t_one > t_many,
         one_at_a_time_s=round(t_one, 3), batched_s=round(t_many, 3), videos=len(samples),
         same_trajectories=same)
    emit("anom_pi.turns_per_s", turns / t_many, "turns/s", "info", None, turns=turns)
    emit("anom_pi.active_over_passive", t_many / t_passive, "ratio", "info", None,
         passive_s=round(t_passive, 3))


if __name__ == "__main__":
    main()
