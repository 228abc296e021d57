"""Methods that predict several samples at once (``batches_samples`` / ``predict_many``).

A test method registered for the module records the chunks the executor hands it: the local
executor cuts the samples into chunks of ``--batch-size``, the records equal those of
per-sample prediction, a video that fails inside a chunk is an error record while the rest of
its chunk is kept, cached records are reused per sample, and a method that does not batch gets
the default ``predict_many`` (a loop over ``predict``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cache import CachedEngine
from harness.cli import main
from harness.config import RunConfig
from harness.engines.base import Engine, Request, Response
from harness.executors.base import Worker
from harness.registry import METHODS
from harness.runner import build_task
from harness.video import VideoError
from methods.base import Method, MethodNeeds, RunContext
from tasks.base import VideoSample

BATCHED = "test_batched_chunks"
PER_SAMPLE = "test_batched_chunks_per_sample"
#: video ids of each chunk handed to ``predict_many``, in call order (local executor: this process)
seen_chunks: list[list[str]] = []
#: video ids handed to ``predict``, in call order
seen_predicted: list[str] = []


@dataclass
class ChunkSettings:
    fail_on: str = ""  # video id whose prediction raises VideoError
    tag_chunks: bool = False  # records name the chunk they were predicted in


class HashScores(Method):
    """Scores every frame from a hash of the video id (a non-batching method)."""

    name = PER_SAMPLE
    task_kinds = frozenset({"frame"})
    needs = MethodNeeds(engine=False)
    Settings = ChunkSettings

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        seen_predicted.append(sample.video_id)
        if sample.video_id == self.settings.fail_on:
            raise VideoError(sample.path, "test: this video fails")
        start, stop = ctx.frame_range(sample)
        rng = np.random.default_rng(zlib.crc32(sample.video_id.encode()))
        return {"video_id": sample.video_id, "num_frames": stop - start,
                "scores": rng.random(stop - start).tolist()}

    def deterministic(self, sample: VideoSample) -> bool:
        return True


class ChunkRecorder(HashScores):
    """:class:`HashScores` predicting chunks of samples; records the chunks it receives."""

    name = BATCHED
    batches_samples = True

    def predict_many(self, samples: Sequence[VideoSample], ctx: RunContext,
                     ) -> list[dict[str, Any] | VideoError]:
        ids = [s.video_id for s in samples]
        seen_chunks.append(ids)
        out = super().predict_many(samples, ctx)
        if self.settings.tag_chunks:
            for rec in out:
                if isinstance(rec, dict):
                    rec["chunk"] = ids
        return out


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    METHODS.add(BATCHED, ChunkRecorder)
    METHODS.add(PER_SAMPLE, HashScores)
    seen_chunks.clear()
    seen_predicted.clear()
    try:
        yield
    finally:
        for name in (BATCHED, PER_SAMPLE):
            METHODS._entries.pop(name, None)
        seen_chunks.clear()
        seen_predicted.clear()


def _run(out: Path, name: str, method: str, *extra: str) -> Path:
    assert main(["--method", method, "--task", "ucf_crime", "--split", "sample", "--out",
                 str(out), "--run-name", name, "--no-progress", *extra]) == 0
    return out / name


def _records(run_dir: Path) -> dict[str, dict[str, Any]]:
    lines = (run_dir / "predictions.jsonl").read_text().splitlines()
    return {json.loads(x)["video_id"]: json.loads(x) for x in lines}


def _sample_ids() -> list[str]:
    task = build_task(RunConfig(method=BATCHED, task="ucf_crime", split="sample"))
    return [s.video_id for s in task.load(None, "sample")]


def test_chunks_follow_batch_size_and_records_equal_per_sample(tmp_path: Path) -> None:
    ids = _sample_ids()
    n = len(ids)
    assert n > 5
    batched = _run(tmp_path, "batched", BATCHED, "--batch-size", "5")
    assert [len(c) for c in seen_chunks] == [5] * (n // 5) + ([n % 5] if n % 5 else [])
    assert [v for c in seen_chunks for v in c] == ids  # consecutive chunks, task order
    seen_chunks.clear()
    single = _run(tmp_path, "single", PER_SAMPLE, "--batch-size", "5")
    assert seen_chunks == []  # a method that does not batch is called per sample
    assert _records(batched) == _records(single) and len(_records(batched)) == n
    metrics = [json.loads((d / "metrics.json").read_text())["metrics"] for d in (batched, single)]
    assert metrics[0] == metrics[1]


def test_failing_video_keeps_the_rest_of_its_chunk(tmp_path: Path) -> None:
    ids = _sample_ids()
    victim = ids[1]  # inside the first chunk
    run_dir = _run(tmp_path, "fail", BATCHED, "--batch-size", "4", "--method-arg",
                   f"fail_on={victim}")
    assert seen_chunks[0] == ids[:4]
    records = _records(run_dir)
    assert set(records) == set(ids) - {victim}
    errors = [json.loads(x) for x in (run_dir / "errors.jsonl").read_text().splitlines()]
    assert [e["video_id"] for e in errors] == [victim]
    assert "test: this video fails" in errors[0]["reason"]
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["errors"] == {"n_videos": 1, "videos": [victim]}


def _worker(batch_size: int = 8) -> tuple[Worker, list[VideoSample]]:
    cfg = RunConfig(method=BATCHED, task="ucf_crime", split="sample", batch_size=batch_size)
    task = build_task(cfg)
    return Worker(cfg, task), task.load(None, "sample")


def test_worker_unreadable_samples_never_reach_the_method() -> None:
    worker, samples = _worker()
    bad = dataclasses.replace(samples[1], extra={**samples[1].extra, "unreadable": "corrupt"})
    chunk = [samples[0], bad, samples[2]]
    out = worker.timed_predict_many(chunk)
    assert seen_chunks == [[samples[0].video_id, samples[2].video_id]]
    assert [r is not None for r, _, _ in out] == [True, False, True]
    error = out[1][1]
    assert isinstance(error, VideoError) and error.reason == "corrupt"
    assert all(s >= 0 for _, _, s in out)
    assert worker.predict_many(chunk)[0] == worker.predict(samples[0])


class _NoModel(Engine):
    name = "no_model"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        raise AssertionError("the test method calls no model")


def test_worker_reuses_cached_records_per_sample(tmp_path: Path) -> None:
    worker, samples = _worker()
    engine = CachedEngine(_NoModel(), tmp_path / "cache")
    worker.engine = engine
    first = worker.timed_predict_many(samples[:3])
    assert seen_chunks == [[s.video_id for s in samples[:3]]]
    assert engine.stats.record_misses == 3 and engine.stats.record_hits == 0
    seen_chunks.clear()
    again = worker.timed_predict_many(samples[:5])  # 3 hits, 2 misses in one call
    assert seen_chunks == [[s.video_id for s in samples[3:5]]]
    assert [r for r, _, _ in again[:3]] == [r for r, _, _ in first]
    assert engine.stats.record_hits == 3 and engine.stats.record_misses == 5
    seen_predicted.clear()
    assert worker.predict(samples[4]) == again[4][0]  # the same key as predict
    assert seen_predicted == [] and engine.stats.record_hits == 4
    engine.close()


def test_default_predict_many_loops_predict() -> None:
    worker, samples = _worker()
    method = HashScores(fail_on=samples[1].video_id)
    assert not method.batches_samples
    out = method.predict_many(samples[:3], worker.ctx)
    assert seen_chunks == []
    assert seen_predicted == [s.video_id for s in samples[:3]]
    assert isinstance(out[1], VideoError)
    assert out[0] == method.predict(samples[0], worker.ctx)
    assert isinstance(out[2], dict) and out[2]["video_id"] == samples[2].video_id


def test_ray_workers_predict_the_same_chunks(tmp_path: Path) -> None:
    """Ray workers get consecutive chunks of --batch-size samples (the records name their
    chunk) and give the local executor's records and error records."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ray is not installed (the ray executor tests need it in CI)")
        pytest.skip("ray is not installed")
    ids = _sample_ids()
    method = f"{__name__}:ChunkRecorder"  # what the Ray workers can import
    args = ("--batch-size", "5", "--method-arg", "tag_chunks=true", "--method-arg",
            f"fail_on={ids[6]}")
    local = _run(tmp_path, "local", method, *args)
    ray_dir = _run(tmp_path, "ray", method, *args, "--executor", "ray", "--workers", "2",
                   "--worker-cpus", "0.5")
    records = _records(ray_dir)
    assert records == _records(local) and len(records) == len(ids) - 1
    assert records[ids[5]]["chunk"] == ids[5:10]
    lines = (ray_dir / "errors.jsonl").read_text().splitlines()
    errors = [json.loads(x)["video_id"] for x in lines]
    assert errors == [ids[6]]
