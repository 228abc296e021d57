"""COPRA's inference cost, decomposed as the paper's Table 9 (one run, tiny Qwen2-VL, CPU).

* ``copra.segment_over_frozen``: wall time of an untrained COPRA at segment granularity (one
  generated adapter per window) over the frozen baseline's on the same sample-world videos
  (the engine's response cache off). Goal <= 3: generating and applying adapters may not
  triple the cost of the window questions.
* ``copra.chunk_over_segment``: the same at chunk granularity (2-s chunks, ~4x fewer adapters)
  over segment granularity: amortising generation must not cost more (goal <= 1.0).
* ``copra.generator_ms_per_input``: the generator's own time per generated adapter (info).
* ``copra.train_step_s``: one GRPO step of the tiny preset (4 videos x 8 completions);
  ``vad-eval train`` with no flags runs 200 of them (goal: 200 steps in < 600 s).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import emit
from harness.engines.hf import HFEngine
from harness.registry import TASKS
from harness.training import StepLog, TrainJob
from harness.video import read_frames
from methods.base import RunContext
from methods.copra.method import CopraMethod
from methods.copra.train import CopraTrainer, load_config
from methods.frozen import FrozenBaseline
from tasks.base import VideoSample


def _time(method: FrozenBaseline, samples: list[VideoSample], ctx: RunContext) -> float:
    t0 = time.perf_counter()
    for s in samples:
        method.predict(s, ctx)
    return time.perf_counter() - t0


def bench_inference() -> None:
    engine = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=8)
    samples = TASKS.get("ucf_crime")().load(None, "sample")[:4]  # type: ignore[operator]
    ctx = RunContext(batch_size=8)
    frozen = FrozenBaseline(engine)
    seg = CopraMethod(engine, granularity="segment")
    chunk = CopraMethod(engine, granularity="chunk", chunk_seconds=2.0)
    _time(seg, samples[:1], ctx)  # warm-up: build the generator, first-call costs
    t_frozen = _time(frozen, samples, ctx)
    rows0 = seg.model().rows_generated
    t_seg = _time(seg, samples, ctx)
    seg_rows = seg.model().rows_generated - rows0
    t_chunk = _time(chunk, samples, ctx)
    chunk_rows = chunk.model().rows_generated
    emit("copra.segment_over_frozen", t_seg / t_frozen, "ratio", "<= 3", t_seg / t_frozen <= 3,
         frozen_s=round(t_frozen, 3), copra_s=round(t_seg, 3), adapters=seg_rows)
    emit("copra.chunk_over_segment", t_chunk / t_seg, "ratio", "<= 1.0", t_chunk / t_seg <= 1.0,
         segment_adapters=seg_rows, chunk_adapters=chunk_rows)
    tokens = engine.visual_tokens([_clip(samples[0])] * 8)
    model = seg.model()
    t0 = time.perf_counter()
    for _ in range(5):
        model(tokens)
    ms = (time.perf_counter() - t0) / (5 * len(tokens)) * 1000
    emit("copra.generator_ms_per_input", ms, "ms", "info", None,
         generator_parameters=model.parameter_count(),
         generated_parameters_per_input=model.generated_parameters())
    engine.close()


def _clip(sample: VideoSample) -> np.ndarray:
    """8 frames, 30 apart, of a sample-world video."""
    idx = list(range(0, 240, 30))
    return read_frames(sample.path, idx, max_pixels=448 * 448).take(idx)


def bench_train_step() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        job = TrainJob(method="copra", task="ucf_crime", out=Path(tmp))
        cfg = load_config(job, "copra", True)
        engine = HFEngine(model=cfg.model, device="cpu", batch_size=cfg.batch_size)
        videos = TASKS.get("ucf_crime")().load_train(None, "sample")  # type: ignore[operator]
        trainer = CopraTrainer(cfg, engine, videos)
        log = StepLog(job)
        batches = trainer.batches()
        log(trainer.step(0, batches[0]))  # warm-up (decoding, caches)
        t0 = time.perf_counter()
        for i in range(1, 6):
            log(trainer.step(i, batches[i]))
        per = (time.perf_counter() - t0) / 5
        engine.close()
    emit("copra.train_step_s", per, "s", "< 3 (200 steps < 600 s)", per < 3.0,
         steps_default=trainer.total_steps)


def main() -> None:
    bench_inference()
    bench_train_step()


if __name__ == "__main__":
    main()
