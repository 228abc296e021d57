"""``vad-eval train --method anom-pi``: iDPO under the AEI utility on video-level labels.

The task's native training list gives the labelled videos (UCF-Crime ``Anomaly_Train.txt``,
XD-Violence, Vad-Reasoning's RL rows, the sample world's training split). Configuration:
:class:`AnomPiTrainConfig` (defaults: ours, README), overridden by a preset or YAML file
(``--config``; with none, the preset made for the job's model: ``tiny`` for the default tiny
model), then by ``--method-arg`` values and ``--steps`` (iDPO rounds). The checkpoint
(``--out``) is a :class:`methods.anom_pi.policy.AnomPiPolicy` directory whose ``anom_pi.json``
carries the review configuration, so ``vad-eval --method anom-pi --checkpoint CKPT`` reviews
the way it was trained.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.engines.hf import HFEngine
from harness.training import (
    StepLog,
    TrainingError,
    TrainJob,
    TrainResult,
    build_config,
    config_values,
)
from harness.video import count_frames
from methods.anom_pi.aei import AEIWeights
from methods.anom_pi.idpo import IDPO, IDPOConfig
from methods.anom_pi.policy import AnomPiPolicy
from methods.anom_pi.rollout import Decoding, Reviewer, ReviewVideo
from methods.anom_pi.settings import DEFAULT_ENV, MAX_PIXELS, review_config
from tasks.training import TrainVideo

PRESETS = Path(__file__).parent / "presets"


@dataclass
class AnomPiTrainConfig:
    """Every training setting: the backbone and policy parametrisation, the review (see
    :class:`methods.anom_pi.env.EnvConfig`), the AEI weights
    (:class:`methods.anom_pi.aei.AEIWeights`) and iDPO (:class:`methods.anom_pi.idpo.
    IDPOConfig`)."""

    model: str | None = None
    mode: str = "full"
    lora_rank: int = 16
    lora_alpha: float | None = None
    batch_size: int = 16
    # review
    frames_per_view: int = DEFAULT_ENV.frames_per_view
    max_frames: int = DEFAULT_ENV.max_frames
    max_turns: int = DEFAULT_ENV.max_turns
    snippet: int = DEFAULT_ENV.snippet
    snippet_stride: int = DEFAULT_ENV.snippet_stride
    zoom_segments: int = 2
    expand_factor: float = 2.0
    backtrack_shift: float = 0.5
    max_pixels: int | None = MAX_PIXELS
    thinking: bool = True
    think_tokens: int = 24
    prompt_file: str | None = None
    # AEI
    success_weight: float = 1.0
    informativeness_weight: float = 0.5
    turn_cost: float = 0.02
    frame_cost: float = AEIWeights.frame_cost
    # iDPO
    steps: int = 40
    batch_videos: int = 4
    rollouts: int = 4
    temperature: float = 1.0
    beta: float = 0.1
    label_smoothing: float = 0.0
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    min_gap: float = 0.05
    pairs_per_video: int = 1
    score_batch: int = 8

    def weights(self) -> AEIWeights:
        return AEIWeights(self.success_weight, self.informativeness_weight, self.turn_cost,
                          self.frame_cost)

    def idpo(self) -> IDPOConfig:
        """The iDPO settings, by name (every :class:`IDPOConfig` field is a field here)."""
        return IDPOConfig(**{f.name: getattr(self, f.name)
                             for f in dataclasses.fields(IDPOConfig)})


def load_config(job: TrainJob) -> AnomPiTrainConfig:
    """defaults < preset/file < ``method_args`` < ``--model`` / ``--steps``."""
    values, where = config_values(job, PRESETS, "Anom-π")
    if job.steps is not None:
        values["steps"] = job.steps
    cfg = build_config(AnomPiTrainConfig, values, where, "Anom-π",
                       lambda c: (c.weights(), c.idpo(), review_config(c)))
    if cfg.mode not in ("full", "lora"):
        raise TrainingError(f"{where}: mode must be 'full' or 'lora', got {cfg.mode!r}")
    if job.stage is not None:
        raise TrainingError("Anom-π trains in one stage (iDPO); drop --stage")
    return cfg


def review_video(v: TrainVideo) -> ReviewVideo:
    """A labelled training video as the reviewer reads it (frames counted when unknown)."""
    if v.path is None:
        raise TrainingError(f"training video {v.video_id!r} has no file")
    n = v.num_frames or count_frames(v.path)
    return ReviewVideo(v.video_id, v.path, n, v.fps, 0, int(v.label), v.category)


def train_anom_pi(job: TrainJob) -> TrainResult:
    """Run iDPO and save the checkpoint to ``job.out``."""
    from harness.registry import TASKS

    cfg = load_config(job)
    review = review_config(cfg)
    task: Any = TASKS.get(job.task)(**job.task_args)  # type: ignore[operator]
    if not hasattr(task, "load_train"):
        raise TrainingError(f"task {job.task!r} has no training videos")
    videos = [review_video(v) for v in task.load_train(job.data_path(), job.resolved_split())]
    if not videos:
        raise TrainingError(f"task {job.task!r} split {job.resolved_split()!r} has no training "
                            "videos")
    labels = [int(v.label or 0) for v in videos]
    engine = HFEngine(model=cfg.model, device=job.device, dtype=job.dtype,
                      batch_size=cfg.batch_size, seed=job.seed)
    try:
        policy = AnomPiPolicy(engine, cfg.mode, cfg.lora_rank, cfg.lora_alpha, seed=job.seed)
        decoding = Decoding(temperature=cfg.temperature, think_tokens=review.think_tokens,
                            constrained=True, confidence=True, seed=job.seed)
        reviewer = Reviewer(engine, review.env, review.prompts, decoding, review.max_pixels,
                            review.thinking, cfg.batch_size)
        loop = IDPO(policy, engine, reviewer, videos, cfg.idpo(), cfg.weights(), job.seed)
        t0 = time.perf_counter()
        log = StepLog(job)

        def log_row(row: dict[str, Any]) -> None:
            ops = row["usage"]["operators"]
            row = {**row, "note": (f"ops backtrack {ops['backtrack']:.2f} expand "
                                   f"{ops['expand']:.2f} zoom {ops['zoom']:.2f}, turns "
                                   f"{row['usage']['mean_turns']:.1f}, frames "
                                   f"{row['usage']['mean_frames_decoded']:.1f}")}
            log(row)

        summary = loop.run(log_row)
        summary.update(seconds=round(time.perf_counter() - t0, 1),
                       trained_parameters=policy.parameter_count(), mode=cfg.mode,
                       abnormal_videos=int(sum(labels)), normal_videos=len(labels) - sum(labels))
        meta = {"task": job.task, "split": job.resolved_split(), "review": review.to_dict(),
                "aei": dataclasses.asdict(cfg.weights()), "config": dataclasses.asdict(cfg),
                "sources": dict(getattr(task, "train_sources", {})), "seed": job.seed,
                "engine": engine.describe(), "summary": summary}
        policy.save(job.out, meta)
        return TrainResult(job.out, summary)
    finally:
        engine.close()
