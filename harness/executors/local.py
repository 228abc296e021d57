"""The local executor: one worker in the driver process, samples in task order (in chunks of
``batch_size`` samples for a method that sets ``batches_samples``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.executors.base import Executor, OnError, OnRecord, Progress, Worker, WorkerSetup
from harness.video import VideoError
from tasks.base import Task, VideoSample


class LocalExecutor(Executor):
    """Predicts the samples one after the other with one engine and method in this process."""

    name = "local"
    worker: Worker | None = None
    cache_stats: dict[str, Any] | None = None

    def start(self, task: Task) -> WorkerSetup:
        self.worker = Worker(self.cfg, task)
        return self.worker.setup

    def run(self, todo: Sequence[VideoSample], on_record: OnRecord, on_error: OnError,
            bar: Progress) -> None:
        worker = self.worker
        if worker is None:
            raise RuntimeError("LocalExecutor.run before start")
        if not worker.method.batches_samples:
            for sample in todo:
                self._deliver(sample, *worker.timed_predict(sample), on_record, on_error, bar)
            return
        size = max(1, worker.ctx.batch_size)  # chunks of videos predicted together
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            for sample, result in zip(chunk, worker.timed_predict_many(chunk), strict=True):
                self._deliver(sample, *result, on_record, on_error, bar)

    @staticmethod
    def _deliver(sample: VideoSample, record: dict[str, Any] | None, error: VideoError | None,
                 seconds: float, on_record: OnRecord, on_error: OnError, bar: Progress) -> None:
        if error is not None:
            on_error(sample, error, seconds)
        else:
            assert record is not None
            on_record(record, seconds)
        bar.update(1)

    def close(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()
            self.cache_stats = worker.cache_stats
