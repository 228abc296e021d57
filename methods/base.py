"""Method interface: a method turns one sample into one prediction record.

A method class declares what it needs (:class:`MethodNeeds`) and which task kinds it serves;
the runner checks both against the engine's capabilities and the task before any video is
decoded. Settings are a dataclass (``Settings``) built from ``--method-arg`` / config values, so
an unknown or mistyped setting fails with its name.

Prediction records for ``frame`` tasks: ``{"video_id": str, "num_frames": int,
"scores": [float per frame], "step_scores": {step: [float per frame]}, ...}`` with one float64
score per 0-based frame; any further keys (answers, explanations) are kept in the run store.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.engines.base import Engine, EngineCapabilities
from harness.video import Frames, VideoError, read_frames
from tasks.base import VideoSample, build_settings
from tasks.text_task import FramePlan
from tasks.windows import Sampler, WindowSpec, sample_window


@dataclass(frozen=True)
class MethodNeeds:
    """Requirements checked before a run starts.

    ``logprobs`` and ``embeddings`` are *required* capabilities; a method that merely uses
    them when present says so in ``uses_logprobs`` / ``uses_embeddings``.
    """

    engine: bool = True
    logprobs: bool = False
    embeddings: bool = False
    lora: bool = False
    video: bool = True

    def check(self, caps: EngineCapabilities | None, engine_name: str) -> list[str]:
        """Reasons this engine cannot serve the method (empty when it can)."""
        if not self.engine:
            return []
        if caps is None:
            return ["the method needs an inference engine"]
        wants = {"logprobs": self.logprobs, "embeddings": self.embeddings, "lora": self.lora,
                 "video": self.video}
        return [f"engine {engine_name!r} lacks {k}" for k, v in wants.items()
                if v and not getattr(caps, k)]


@dataclass
class RunContext:
    """What the runner gives a method for one run: seed, batch size, pixel budget, the frame
    task's window grid (``window``) or the language-side task's frame plan (``frame_plan``)."""

    seed: int = 0
    batch_size: int = 8
    max_pixels: int | None = None
    window: WindowSpec = dataclasses.field(default_factory=WindowSpec)
    frame_plan: FramePlan | None = None

    def read(self, sample: VideoSample, indices: np.ndarray, max_pixels: int | None = None,
             ) -> Frames:
        """Decode ``indices`` of the sample's video in one pass (see :mod:`harness.video`)."""
        if sample.path is None:
            raise VideoError(None, f"sample {sample.video_id!r} has no video file")
        budget = max_pixels if max_pixels is not None else self.max_pixels
        return read_frames(sample.path, indices, max_pixels=budget)

    def frame_range(self, sample: VideoSample) -> tuple[int, int]:
        """``(start, stop)`` frames of the sample's video a method may look at (``stop``
        exclusive): its span, else ``[0, num_frames)``, counting the frames of the file when
        the annotation gives no count (``num_frames == 0``)."""
        if sample.span is not None:
            return sample.span
        if sample.num_frames > 0:
            return 0, sample.num_frames
        if sample.path is None:
            raise VideoError(None, f"sample {sample.video_id!r} has no video file")
        from harness.video import count_frames

        n = count_frames(sample.path)
        if n <= 0:
            raise VideoError(sample.path, "no decodable frames")
        return 0, n

    def sample_frames(self, sample: VideoSample, n: int, sampler: Sampler = "linspace",
                      max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` frames drawn by ``sampler`` (see :func:`tasks.windows.sample_window`) from
        the sample's frame range, decoded in one pass -> ``(indices (n,), frames (n, H, W,
        3) uint8)``."""
        start, stop = self.frame_range(sample)
        idx = sample_window(start, stop, n, sampler)
        frames = self.read(sample, idx, max_pixels=max_pixels)
        return idx, frames.take(idx)


@dataclass
class NoSettings:
    pass


class Method(abc.ABC):
    """Base class. Subclasses set ``name``, ``task_kinds``, ``needs`` and ``Settings``."""

    name: ClassVar[str] = "method"
    description: ClassVar[str] = ""
    task_kinds: ClassVar[frozenset[str]] = frozenset({"frame"})
    needs: ClassVar[MethodNeeds] = MethodNeeds()
    Settings: ClassVar[type] = NoSettings
    #: whether the method's weights are trained for anomaly detection (a leaderboard's "trained"
    #: column); ``False`` = training-free / zero-shot. A run with a ``checkpoint`` setting counts
    #: as trained whatever this says.
    trained: ClassVar[bool] = False
    #: when True, the executors hand the method chunks of ``ctx.batch_size`` samples through
    #: :meth:`predict_many` (multi-video batched rollouts) instead of one sample per
    #: :meth:`predict` call
    batches_samples: ClassVar[bool] = False

    def __init__(self, engine: Engine | None = None, **settings: Any) -> None:
        self.engine = engine
        self.settings = build_settings(self.Settings, f"method {self.name!r}", settings)

    @abc.abstractmethod
    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        """The prediction record of one sample (see module docstring)."""

    def predict_many(self, samples: Sequence[VideoSample], ctx: RunContext,
                     ) -> list[dict[str, Any] | VideoError]:
        """The prediction records of several samples at once (methods that set
        ``batches_samples`` override this to batch across videos).

        Returns exactly one entry per sample, in the order of ``samples``: the sample's record
        (as :meth:`predict` would give it), or the :class:`harness.video.VideoError` raised for
        that sample, so that one unreadable video does not lose the others. Any other
        exception ends the run, as it does from :meth:`predict`. Records must not depend on
        how the samples are chunked. Default: :meth:`predict` on each sample in turn.
        """
        out: list[dict[str, Any] | VideoError] = []
        for sample in samples:
            try:
                out.append(self.predict(sample, ctx))
            except VideoError as exc:
                out.append(exc)
        return out

    def deterministic(self, sample: VideoSample) -> bool:
        """Whether this method's record for ``sample`` is fully determined by its inputs
        (greedy decoding only, no unseeded randomness). Such records are reused from the
        response cache by a re-run (keyed by the code, engine, settings, context and sample);
        the default, False, always predicts afresh."""
        return False

    def window_spec(self, task_spec: WindowSpec) -> WindowSpec:
        """The window grid this method uses, given the task's (stride and window length come
        from the task; a method may choose how many frames it samples per window). The runner
        records the result as the run's protocol."""
        return task_spec

    @classmethod
    def engine_model(cls, method_args: dict[str, Any], model: str | None) -> str | None:
        """The model the run's engine must load given the method's settings (a method whose
        checkpoint is a whole fine-tuned model returns its directory); default: ``model``."""
        return model

    @classmethod
    def train_routine(cls, job: Any) -> Any:
        """Train this method (``vad-eval train``, :class:`harness.training.TrainJob` in,
        :class:`harness.training.TrainResult` out). Methods without training raise."""
        from harness.training import TrainingError

        raise TrainingError(f"method {cls.name!r} has no training routine")

    @classmethod
    def summarize(cls, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Run-level statistics of this method's own record fields (e.g. how many frames went
        to an LLM), over the run's records in sample order; the runner stores a non-empty
        result as ``method_summary`` in the run's metrics. Default: none."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Name and resolved settings, recorded in the run's config."""
        return {"name": self.name, "settings": dataclasses.asdict(self.settings)}
