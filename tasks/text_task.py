"""Language-side tasks: a method answers questions about videos in text; the task scores text.

:class:`TextTask` is the shared part of ``vru_accident_qa``, ``vru_accident_caption``,
``hivau``, ``vad_reasoning`` and ``vane``:

* **Samples.** One :class:`~tasks.base.VideoSample` per video file (or per clip cut on the fly
  from a raw video: ``span``), holding the video's :class:`~tasks.base.Query` objects and the
  ground truth per query id in ``references``.
* **Frames.** Each task states its protocol's frame plan (:class:`FramePlan`: how many frames,
  drawn how, under which pixel budget). Methods follow it by default and record what they used.
* **Prediction records.** ``{"video_id": str, "responses": {query id: raw text}, ...}``: the
  raw generated text, never pre-extracted, so that answers can be re-scored and inspected.
  A query without a response (or with ``None``) counts as unanswered: wrong for accuracy,
  an empty hypothesis for text metrics.
* **Scoring.** The subclass's :meth:`TextTask.score` turns ``(query, reference, response)``
  items into metrics. Unparsable answers count as wrong and are counted in ``unparsed``; they
  stay in the run's predictions for inspection. Metrics a back-end cannot compute here (SPICE
  without CoreNLP, COMET without a model) are listed in ``unavailable_metrics`` with the
  reason, never reported as 0.
* **LLM judge** (opt-in, ``judge=true``): see :mod:`tasks.judge`.

All rates (accuracy, precision, ...) are fractions in ``[0, 1]``; papers print percentages.
"""

from __future__ import annotations

import abc
import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tasks.base import Query, Task, TaskDataError, VideoSample, build_settings
from tasks.windows import SAMPLERS, Sampler


@dataclass(frozen=True)
class FramePlan:
    """How the protocol samples frames: ``frames`` indices drawn by ``sampler`` over the
    sample's frame range (see :func:`tasks.windows.sample_window`), each resized to at most
    ``max_pixels`` pixels (``None``: the method's or engine's own budget)."""

    frames: int = 8
    sampler: Sampler = "linspace"
    max_pixels: int | None = None


@dataclass
class TextSettings:
    """Settings every language-side task accepts.

    ``frames`` / ``sampler`` / ``max_pixels`` override the protocol's frame plan (recorded in
    the run). ``judge*``: the opt-in LLM-judge metric (:mod:`tasks.judge`).
    """

    frames: int | None = None
    sampler: str | None = None
    max_pixels: int | None = None
    judge: bool = False
    judge_engine: str = "hf"
    judge_model: str | None = None
    judge_prompt_file: str | None = None
    judge_max_new_tokens: int = 96
    judge_batch_size: int = 8


@dataclass
class Item:
    """One query to score: its sample, the query, the reference and the raw response."""

    video_id: str
    query: Query
    reference: Any
    response: str | None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class TextTask(Task):
    """Base class of the language-side tasks (see the module docstring)."""

    kind: ClassVar[str] = "text"
    dataset: ClassVar[str] = ""
    frame_plan_default: ClassVar[FramePlan] = FramePlan()
    sample_dataset: ClassVar[str | None] = None
    Settings: ClassVar[type[TextSettings]] = TextSettings

    def __init__(self, **settings: Any) -> None:
        self.settings = build_settings(self.Settings, f"task {self.name!r}", settings)
        s = self.settings
        if s.sampler is not None and s.sampler not in SAMPLERS:
            raise ValueError(f"task {self.name!r}: sampler must be one of {SAMPLERS}, "
                             f"got {s.sampler!r}")
        if s.frames is not None and s.frames <= 0:
            raise ValueError(f"task {self.name!r}: frames must be > 0, got {s.frames}")
        self.sources: dict[str, str] = {}

    # -- protocol ----------------------------------------------------------------------------
    @property
    def frame_plan(self) -> FramePlan:
        d = self.frame_plan_default
        s = self.settings
        return FramePlan(
            frames=s.frames or d.frames,
            sampler=(s.sampler or d.sampler),  # type: ignore[arg-type]
            max_pixels=s.max_pixels if s.max_pixels is not None else d.max_pixels,
        )

    def protocol(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.name,
            "dataset": self.dataset or self.name,
            "kind": self.kind,
            "frames": dataclasses.asdict(self.frame_plan) | {"indices": "0-based"},
            "rates": "fractions in [0, 1]",
            "sources": dict(self.sources),
        }
        if self.settings.judge:
            out["judge"] = {"engine": self.settings.judge_engine,
                            "model": self.settings.judge_model,
                            "prompt_file": self.settings.judge_prompt_file}
        return out

    # -- loading -----------------------------------------------------------------------------
    @abc.abstractmethod
    def read_samples(self, root: Path) -> list[VideoSample]:
        """Read the dataset's native files under ``root`` (recording them in ``sources``)."""

    def load(self, data_root: Path | None, split: str) -> list[VideoSample]:
        root = self.resolve_root(data_root, split, self.sample_dataset)
        self.sources = {"data_root": str(root)}
        samples = self.read_samples(root)
        if not samples:
            raise TaskDataError(f"{root}: no test samples found for task {self.name!r}")
        ids = Counter(s.video_id for s in samples)
        dup = [k for k, n in ids.items() if n > 1]
        if dup:
            raise TaskDataError(f"{root}: sample ids occur twice: {dup[:5]}")
        return samples

    # -- statistics --------------------------------------------------------------------------
    def describe(self, samples: Sequence[VideoSample]) -> dict[str, Any]:
        per_cat = Counter(q.category for s in samples for q in s.queries)
        return {
            "task": self.name,
            "videos": len(samples),
            "queries": sum(len(s.queries) for s in samples),
            "per_category": dict(sorted(per_cat.items())),
            "unreadable_videos": len([s for s in samples if s.extra.get("unreadable")]),
            "protocol": self.protocol(),
        }

    # -- evaluation --------------------------------------------------------------------------
    def items(self, samples: Sequence[VideoSample],
              predictions: Mapping[str, Mapping[str, Any]]) -> tuple[list[Item], int]:
        """Items of all predicted samples, and the number of samples without a prediction."""
        out: list[Item] = []
        missing = 0
        for s in samples:
            rec = predictions.get(s.video_id)
            if rec is None:
                missing += 1
                continue
            responses = rec.get("responses") or {}
            if not isinstance(responses, Mapping):
                raise TaskDataError(f"prediction of {s.video_id!r}: 'responses' must map query "
                                    f"ids to text, got {type(responses).__name__}")
            for q in s.queries:
                out.append(Item(s.video_id, q, s.references.get(q.qid),
                                _text(responses.get(q.qid))))
        return out, missing

    @abc.abstractmethod
    def score(self, items: Sequence[Item]) -> dict[str, Any]:
        """``{"metrics": {...}, ...}`` for the items (see the module docstring)."""

    def evaluate(
        self, samples: Sequence[VideoSample], predictions: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        items, missing = self.items(samples, predictions)
        result: dict[str, Any] = {"metrics": {}, "unavailable_metrics": {}}
        if items:
            result.update(self.score(items))
        result.setdefault("unavailable_metrics", {})
        result["counts"] = {
            "samples": len(samples),
            "evaluated_samples": len(samples) - missing,
            "queries": len(items),
            "unanswered": sum(1 for it in items if it.response is None),
        }
        result["missing_videos"] = missing
        if self.settings.judge and items:
            from tasks.judge import run_judge

            result["judge"] = run_judge(self, items)
            result["metrics"].update(result["judge"].pop("metrics"))
        result["protocol"] = self.protocol()
        return result

    def judge_pairs(self, items: Sequence[Item]) -> list[tuple[str, str]]:
        """``(reference, hypothesis)`` texts the LLM judge compares; tasks with free-text
        answers override this (multiple choice has nothing to judge)."""
        raise TaskDataError(f"task {self.name!r} has no free-text answers to judge")


MATCH_MODES = ("extract", "exact")


@dataclass
class ChoiceSettings(TextSettings):
    """``match``: ``"extract"`` reads the letter with :func:`tasks.answers.extract_choice`;
    ``"exact"`` applies the benchmark's official string rule (:meth:`ChoiceTask.exact`)."""

    match: str = "extract"


class ChoiceTask(TextTask):
    """A multiple-choice task: the answer is a letter among each query's options."""

    kind: ClassVar[str] = "mcq"
    Settings: ClassVar[type[TextSettings]] = ChoiceSettings
    settings: ChoiceSettings

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.settings.match not in MATCH_MODES:
            raise ValueError(f"task {self.name!r}: match must be one of {MATCH_MODES}, got "
                             f"{self.settings.match!r}")
        if self.settings.judge:
            raise ValueError(f"task {self.name!r}: judge=true needs free-text answers; a "
                             f"multiple-choice task has none to judge")

    @staticmethod
    def exact(response: str) -> str | None:
        """The official rule's answer from a raw response (None: no answer)."""
        return response.strip().upper() or None

    def answer(self, item: Item) -> str | None:
        """The letter read from the response (None: unanswered or unreadable)."""
        from tasks.answers import extract_choice

        if item.response is None:
            return None
        if self.settings.match == "exact":
            return self.exact(item.response)
        letters = [k for k, _ in item.query.options] or ["A", "B", "C", "D"]
        return extract_choice(item.response, letters,
                              [t for _, t in item.query.options] or None)


def require(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``obj[key]`` checked to be of ``kind``; the error names the file and the field."""
    if not isinstance(obj, Mapping):
        raise TaskDataError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise TaskDataError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise TaskDataError(f"{where}: field {key!r} must be {names}, "
                            f"got {type(value).__name__}")
    return value


def slug(text: str) -> str:
    """Metric-key form of a category: ``"weather and light"`` -> ``"weather_and_light"``."""
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split())

