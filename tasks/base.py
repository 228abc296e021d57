"""Task interface and the records tasks exchange with the runner.

A task reads a benchmark's native annotation files into samples, and turns the predictions a
method produced into metrics, pooled exactly as the benchmark's protocol says.

Frame conventions (all tasks): frames are 0-based indices into the decoded video; an interval
``(s, e)`` is stored as written in the annotation, and :attr:`VideoSample.end_inclusive` says
whether ``e`` itself belongs to it. ``VideoSample.labels`` is already resolved under that
convention: ``labels[f] == 1`` iff frame ``f`` is anomalous.

Language-side tasks (multiple choice, captions, reasoning) give each sample one or more
:class:`Query` objects: the questions a method answers about the sample's video (or about the
part ``span`` of it). The method returns raw text per query; the task extracts and scores.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

NORMAL = "Normal"


@dataclass(frozen=True)
class Query:
    """One question a method answers about a sample's video.

    Attributes:
        qid: id unique within the sample (the VRU category, the HIVAU row id, ...).
        prompt: the text the model is asked, options included, in the task's wording.
        category: what the query is grouped by in the metrics (VRU category, HIVAU task type,
            VANE category).
        answer_format: ``"choice"`` (a letter among ``options``), ``"text"`` (free text),
            or ``"vad_r1"`` (Vad-R1's tagged reasoning and answer).
        options: ``(letter, option text)`` pairs of a multiple-choice question.
        max_new_tokens, temperature, top_p: the protocol's decoding settings (greedy when
            ``temperature == 0``); a method may override them and records what it used.
        system: the protocol's system prompt ("" = none).
    """

    qid: str
    prompt: str
    category: str = ""
    answer_format: str = "text"
    options: tuple[tuple[str, str], ...] = ()
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    system: str = ""


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
        path: the video file (or a folder of frame images), or ``None`` when only annotations
            are available.
        span: ``(start, stop)`` 0-based frames of ``path`` this sample covers, ``stop``
            exclusive (a clip or event cut from a raw video on the fly); ``None`` = all frames.
        queries: the questions of a language-side task (empty for frame tasks).
        references: ground truth per query id, for the task's scoring only (methods must not
            read it).
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
    span: tuple[int, int] | None = None
    queries: tuple[Query, ...] = ()
    references: dict[str, Any] = field(default_factory=dict)

    @property
    def is_anomalous(self) -> bool:
        return self.category != NORMAL


Sample = VideoSample


def build_settings(cls: type, owner: str, values: Mapping[str, Any]) -> Any:
    """``cls(**values)`` for a settings dataclass; an unknown name fails with the owner's name
    and the known settings (``owner`` is e.g. ``"task 'hivau'"``)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{owner}: unknown setting(s) {unknown}; known: {sorted(names)}")
    return cls(**values)


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
    headline: ClassVar[tuple[str, ...]] = ()  # metrics a leaderboard shows first
    #: regular expressions (full match) of every metric key ``evaluate`` may put in
    #: ``result["metrics"]`` that a leaderboard compares (counts such as ``n_videos`` are not
    #: metrics); empty means the ``headline`` names. Submissions are checked against them.
    metric_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def metric_patterns(cls) -> tuple[str, ...]:
        """:attr:`metric_keys`, or the escaped ``headline`` names when none are declared."""
        import re

        return cls.metric_keys or tuple(re.escape(k) for k in cls.headline)

    @classmethod
    def metric_range(cls, key: str) -> tuple[float, float]:
        """Closed range ``(lo, hi)`` of a metric's values: ``[0, 1]`` (fractions, not percent)
        unless a task says otherwise."""
        return (0.0, 1.0)

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

    def resolve_root(self, data_root: Path | None, split: str,
                     sample_dataset: str | None) -> Path:
        """The directory to read ``split`` from: ``data_root``, or for the ``sample`` split
        without one the bundled sample world ``sample_dataset`` (generated on first use).

        Raises:
            ValueError: unknown split.
            TaskDataError: no data root where one is needed, or it is not a directory.
        """
        if split not in self.splits:
            raise ValueError(f"task {self.name!r} has no split {split!r}; "
                             f"splits: {', '.join(self.splits)}")
        if data_root is None:
            if split != "sample" or sample_dataset is None:
                raise TaskDataError(f"task {self.name!r}: split {split!r} needs a data root "
                                    f"(--data-root) holding the dataset's annotation files")
            # Imported lazily: only the sample split needs the generator.
            sample_world = importlib.import_module("harness.sample_world")
            data_root = sample_world.ensure_sample(sample_dataset)
        root = Path(data_root)
        if not root.is_dir():
            raise TaskDataError(f"{root}: data root is not a directory")
        return root

    def describe(self, samples: Sequence[VideoSample]) -> dict[str, Any]:
        """Dataset statistics (videos, frames, anomalous frames, per class)."""
        return {"task": self.name, "videos": len(samples)}

    def protocol(self) -> dict[str, Any]:
        """Protocol parameters to record in every run (label convention, fps, ...)."""
        return {}
