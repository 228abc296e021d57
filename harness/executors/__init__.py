"""Executors: who predicts the samples of a run (see :mod:`harness.executors.base`).

``local`` (default): one worker in this process. ``ray``: ``workers`` Ray actors, each with its
own engine and method (:mod:`harness.executors.ray_exec`).
"""

from __future__ import annotations

from typing import TextIO

from harness.config import EXECUTORS, ConfigError, RunConfig
from harness.executors.base import Executor, Worker, WorkerSetup

__all__ = ["EXECUTORS", "Executor", "Worker", "WorkerSetup", "make_executor"]


def make_executor(cfg: RunConfig, log: TextIO) -> Executor:
    """The executor ``cfg.executor`` names."""
    if cfg.executor == "local":
        from harness.executors.local import LocalExecutor

        return LocalExecutor(cfg, log)
    if cfg.executor == "ray":
        from harness.executors.ray_exec import RayExecutor

        return RayExecutor(cfg, log)
    raise ConfigError(f"--executor / executor: unknown executor {cfg.executor!r}; "
                      f"choose one of {', '.join(EXECUTORS)}")
