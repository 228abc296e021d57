"""The local executor: one worker in the driver process, samples in task order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.executors.base import Executor, OnError, OnRecord, Progress, Worker, WorkerSetup
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
        if self.worker is None:
            raise RuntimeError("LocalExecutor.run before start")
        for sample in todo:
            record, error, seconds = self.worker.timed_predict(sample)
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
