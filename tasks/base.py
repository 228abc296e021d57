"""Task interface and the records tasks exchange with the runner.

A task reads a benchmark's native annotation files into samples, and turns the predictions a
method produced into metrics, pooled exactly as the benchmark's protocol says.

Frame conventions (all tasks): frames are 0-based indices into the decoded video; an interval
``(s, e)`` is stored as written in the annotation, and :attr:`VideoSample.end_inclusive` says
whether ``e`` itself belongs to it. ``VideoSample.labels`` is already resolved under that
convention: ``labels[f] == 1`` iff frame ``f`` is anomalous.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

NORMAL = "Normal"


@dataclass
class VideoSample:
    """One test video of a frame-level task.

    Attributes:
        video_id: name without extension, unique within the task (``Abuse028_x264``).
        num_frames: number of frames the protocol scores (from the annotation index, or decoded).
        fps: the protocol's frame-rate constant for window lengths (30 UCF-Crime, 24 XD-Violence),
            not necessarily the container's rate.
        category: anomaly class, ``"Normal"`` for normal videos. Multi-label datasets join labels
            with ``","``.
        intervals: anomalous intervals ``(start, end)``, 0-based frames, as annotated.
        end_inclusive: whether interval ends are inclusive.
        labels: ``(num_frames,)`` uint8 frame labels, 1 = anomalous.
        path: the video file, or ``None`` when only annotations are available.
    """

    video_id: str
    num_frames: int
    fps: float
    category: str = NORMAL
    intervals: tuple[tuple[int, int], ...] = ()
    end_inclusive: bool = True
    labels: np.ndarray | None = None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_anomalous(self) -> bool:
        return self.category != NORMAL


Sample = VideoSample


class TaskDataError(ValueError):
    """An annotation file is malformed or missing; the message names the file and the field."""


class Task(abc.ABC):
    """A benchmark protocol.

    Subclasses set ``name`` and ``kind``; ``kind`` is what methods declare they support
    (``"frame"`` for frame-score tasks, later ``"mcq"``, ``"caption"``, ...).
    """

    name: ClassVar[str] = "task"
    kind: ClassVar[str] = "frame"
    description: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("test", "sample")

    @abc.abstractmethod
    def load(self, data_root: Path | None, split: str) -> list[VideoSample]:
        """Read the split's samples. ``split == "sample"`` reads the bundled sample world
        (generated on first use) when ``data_root`` is ``None``."""

    @abc.abstractmethod
    def evaluate(
        self, samples: Sequence[VideoSample], predictions: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Metrics from per-sample prediction records keyed by ``video_id``.

        Returns a JSON-serialisable dict ``{"metrics": {...}, ...}``; samples without a
        prediction are counted (``missing_videos``) and left out of the pooled metrics.
        """

    def describe(self, samples: Sequence[VideoSample]) -> dict[str, Any]:
        """Dataset statistics (videos, frames, anomalous frames, per class)."""
        return {"task": self.name, "videos": len(samples)}

    def protocol(self) -> dict[str, Any]:
        """Protocol parameters to record in every run (label convention, fps, ...)."""
        return {}
