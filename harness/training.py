"""``vad-eval train``: the one entry point of every method's training routine.

A method that can be trained implements ``train_routine(job: TrainJob) -> TrainResult`` as a
classmethod (:class:`methods.base.Method`); this module resolves the method, runs it and
reports. A training run writes a checkpoint directory (``job.out``) that the method's
``checkpoint`` setting (``vad-eval --method M --checkpoint CKPT``) evaluates, and a
``train_log.jsonl`` of one JSON object per optimisation step inside it.

``split`` follows ``vad-eval run``: ``"sample"`` (the generated sample world, training videos
included) when no ``data_root`` is given, else the dataset under ``data_root``, whose native
training list the task reads (:meth:`tasks.frame_task.FrameTask.load_train`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.registry import METHODS


class TrainingError(RuntimeError):
    """A training job cannot run (no routine, bad configuration, unusable data)."""


class CheckpointError(ValueError):
    """A method's checkpoint is missing, malformed, or made for another backbone or method."""


@dataclass
class TrainJob:
    """What ``vad-eval train`` passes to a method's routine.

    Attributes:
        method, task: registered names.
        out: checkpoint directory to write (created; existing files are overwritten).
        model: backbone (hub id in the local cache, local path, or tiny id; None: the method's
            default).
        data_root, split: where the training videos are (see the module docstring).
        steps: optimisation steps (None: the configuration's, e.g. one epoch).
        config: a YAML file or a preset name of the method (None: the method's default).
        stage: for multi-stage routines (Vad-R1: ``sft`` | ``grpo``; None: all stages).
        seed, device, dtype: as for ``vad-eval run``.
        task_args, method_args: settings of the task (file overrides, ...) and extra
            training settings that override the configuration's.
        log: called with one dict per step (the CLI prints a line).
    """

    method: str
    task: str
    out: Path
    model: str | None = None
    data_root: str | None = None
    split: str | None = None
    steps: int | None = None
    config: str | None = None
    stage: str | None = None
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    task_args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, Any] = field(default_factory=dict)
    log: Callable[[dict[str, Any]], None] | None = None

    def resolved_split(self) -> str:
        return self.split or ("sample" if self.data_root is None else "test")

    def data_path(self) -> Path | None:
        return Path(self.data_root) if self.data_root else None


@dataclass
class TrainResult:
    """A finished training job: its checkpoint and a JSON-able summary."""

    checkpoint: Path
    summary: dict[str, Any]


C = TypeVar("C")


def preset_names(presets: Path) -> list[str]:
    """Names of the ``*.yaml`` presets in a method's ``presets/`` folder, sorted."""
    return sorted(p.stem for p in presets.glob("*.yaml"))


def config_values(job: TrainJob, presets: Path, label: str,
                  default_model: str = "tiny-qwen2-vl") -> tuple[dict[str, Any], str]:
    """A training job's settings, ``(values, where)``: the preset or file named by
    ``job.config`` (None: the preset whose ``model`` is the job's model, if any) <
    ``job.method_args`` < ``--model``. ``where`` names the file (``"defaults"`` without one),
    for error messages; ``label`` names the method in them."""
    from harness.config import read_mapping

    source = job.config
    if source is None:
        model = job.model or default_model
        source = next((n for n in preset_names(presets)
                       if read_mapping(str(presets / f"{n}.yaml")).get("model") == model), None)
    values: dict[str, Any] = {}
    where = "defaults"
    if source is not None:
        path = presets / f"{source}.yaml"
        path = path if path.is_file() else Path(source)
        if not path.is_file():
            raise TrainingError(f"--config {source!r} is neither a {label} preset "
                                f"({', '.join(preset_names(presets))}) nor a file")
        values.update(read_mapping(str(path)))
        where = str(path)
    values.update(job.method_args)
    if job.model is not None:
        values["model"] = job.model
    return values, where


def build_config(cls: Callable[..., C], values: dict[str, Any], where: str, label: str,
                 validate: Callable[[C], object] | None = None) -> C:
    """``cls(**values)`` for a config dataclass, with :class:`TrainingError` naming ``where``
    for unknown keys and for values the constructor or ``validate`` rejects."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise TrainingError(f"{where}: unknown {label} training setting(s) {unknown}; known: "
                            f"{sorted(names)}")
    try:
        cfg = cls(**values)
        if validate is not None:
            validate(cfg)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"{where}: bad {label} training setting ({exc})") from exc
    return cfg


class StepLog:
    """Appends one JSON line per step to ``<out>/train_log.jsonl`` and forwards it to the
    job's callback, adding the elapsed seconds."""

    def __init__(self, job: TrainJob) -> None:
        job.out.mkdir(parents=True, exist_ok=True)
        self.path = job.out / "train_log.jsonl"
        self.path.write_text("", encoding="utf-8")
        self.callback = job.log
        self.start = time.perf_counter()
        self.rows: list[dict[str, Any]] = []

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "elapsed_s": round(time.perf_counter() - self.start, 3)}
        self.rows.append(row)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        if self.callback is not None:
            self.callback(row)
        return row


def train(job: TrainJob) -> TrainResult:
    """Run ``job.method``'s training routine."""
    cls = METHODS.get(job.method)
    routine = getattr(cls, "train_routine", None)
    if routine is None:
        raise TrainingError(f"method {job.method!r} has no training routine")
    result: TrainResult = routine(job)
    return result
