"""``vad-eval train --method vad-r1``: SFT on chains of thought, then AVA-GRPO on weak labels.

Stages (``--stage``): ``sft`` (:mod:`methods.vad_r1.sft`) on the task's chain-of-thought rows
(``Vad-Reasoning-SFT-train.jsonl``), ``grpo`` (:mod:`methods.vad_r1.ava_grpo`) on its
video-level labels (``Vad-Reasoning-RL-train.jsonl``, else the SFT rows' labels); no
``--stage``: both, in that order, in one process. ``--stage grpo`` alone starts from the
``init`` setting (a full-mode ``--stage sft`` checkpoint), else from the backbone itself (the
paper's "RL only" row of Table 4). ``--steps`` sets the step count of the stage run, or of
AVA-GRPO when both run (the SFT keeps ``sft_steps`` / ``sft_epochs``).

Configuration: :class:`VadR1TrainConfig` (defaults: the paper's), overridden by a preset or YAML
file (``--config``; with none, the preset made for the job's model, ``tiny`` for the default
tiny model), then by ``--method-arg`` values and ``--steps``. The checkpoint (``--out``) is
described in :mod:`methods.vad_r1.policy`; ``vad-eval --method vad-r1 --checkpoint CKPT``
evaluates it.
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
from methods.rl.grpo import GRPOConfig
from methods.vad_r1.ava_grpo import AVAGRPO, AVAConfig
from methods.vad_r1.inputs import (
    FRAMES,
    MAX_PIXELS,
    Clip,
    clip_request,
    read_clip,
    reasoning_query,
    template,
)
from methods.vad_r1.policy import Policy, read_meta
from methods.vad_r1.rewards import RewardValues
from methods.vad_r1.sft import SFTConfig, SFTExample, run_sft, target_ids
from tasks.training import TrainVideo

PRESETS = Path(__file__).parent / "presets"
STAGES = ("sft", "grpo")


@dataclass
class VadR1TrainConfig:
    """Every training setting (see :class:`~methods.vad_r1.sft.SFTConfig` and
    :class:`~methods.vad_r1.ava_grpo.AVAConfig` for their defaults' sources)."""

    model: str | None = None
    init: str | None = None
    mode: str = "full"
    lora_rank: int = 16
    lora_alpha: float | None = None
    frames: int = FRAMES
    max_pixels: int | None = MAX_PIXELS
    prompt_file: str | None = None
    batch_size: int = 8
    cache_inputs: bool | None = None
    # SFT
    sft_learning_rate: float = 1e-6
    sft_epochs: float = 4.0
    sft_steps: int | None = None
    sft_batch_size: int = 1
    sft_grad_accum: int = 2
    sft_weight_decay: float = 0.0
    sft_max_grad_norm: float = 1.0
    # AVA-GRPO
    num_generations: int = 4
    beta: float = 0.04
    epsilon: float = 0.2
    learning_rate: float = 1e-6
    weight_decay: float = 0.01
    max_grad_norm: float = 5.0
    temperature: float = 1.0
    max_completion_length: int = 768
    batch_videos: int = 1
    epochs: float = 1.0
    steps: int | None = None
    verification: bool = True
    length_reward: bool = True
    trim_fraction: float = 0.25
    reward_accuracy: float = RewardValues.accuracy
    reward_format: float = RewardValues.format
    reward_verify_abnormal: float = RewardValues.verify_abnormal
    reward_verify_normal: float = RewardValues.verify_normal
    reward_length: float = RewardValues.length

    def sft(self) -> SFTConfig:
        return SFTConfig(self.sft_learning_rate, self.sft_epochs, self.sft_steps,
                         self.sft_batch_size, self.sft_grad_accum, self.sft_weight_decay,
                         self.sft_max_grad_norm)

    def ava(self) -> AVAConfig:
        grpo = GRPOConfig(num_generations=self.num_generations, beta=self.beta,
                          epsilon=self.epsilon, learning_rate=self.learning_rate,
                          weight_decay=self.weight_decay, max_grad_norm=self.max_grad_norm,
                          temperature=self.temperature,
                          max_completion_length=self.max_completion_length)
        values = RewardValues(self.reward_accuracy, self.reward_format,
                              self.reward_verify_abnormal, self.reward_verify_normal,
                              self.reward_length)
        return AVAConfig(grpo, values, self.verification, self.length_reward,
                         self.trim_fraction, self.batch_videos, self.epochs, self.steps)


def load_config(job: TrainJob) -> VadR1TrainConfig:
    """defaults < preset/file < ``method_args`` < ``--model`` / ``--steps``."""
    values, where = config_values(job, PRESETS, "Vad-R1")
    if job.steps is not None:
        values["sft_steps" if job.stage == "sft" else "steps"] = job.steps
    cfg = build_config(VadR1TrainConfig, values, where, "Vad-R1",
                       lambda c: (c.sft(), c.ava()))
    if cfg.mode not in ("full", "lora"):
        raise TrainingError(f"{where}: mode must be 'full' or 'lora', got {cfg.mode!r}")
    if job.stage is not None and job.stage not in STAGES:
        raise TrainingError(f"--stage must be one of {STAGES} (or none: both), got "
                            f"{job.stage!r}")
    return cfg


def _start_model(cfg: VadR1TrainConfig, stage: str | None) -> tuple[str | None, str]:
    """The model the engine loads and the policy mode, given ``init``."""
    if not cfg.init:
        return cfg.model, cfg.mode
    if stage != "grpo":
        raise TrainingError("'init' (a checkpoint to continue from) applies to --stage grpo")
    meta = read_meta(cfg.init)
    if meta["mode"] != "full" or cfg.mode != "full":
        raise TrainingError(f"{cfg.init}: continuing from a checkpoint needs mode 'full' for "
                            "both (a LoRA SFT checkpoint cannot be continued yet)")
    return str(cfg.init), "full"


def train_vad_r1(job: TrainJob) -> TrainResult:
    """Run the job's stage(s) and save the checkpoint to ``job.out``."""
    from harness.registry import TASKS

    cfg = load_config(job)
    stages = (job.stage,) if job.stage else STAGES
    task: Any = TASKS.get(job.task)(**job.task_args)  # type: ignore[operator]
    if "sft" in stages and not hasattr(task, "load_sft"):
        raise TrainingError(f"task {job.task!r} has no chain-of-thought training rows (Vad-R1's "
                            "SFT reads Vad-Reasoning-SFT; use --task vad_reasoning)")
    if not hasattr(task, "load_train"):
        raise TrainingError(f"task {job.task!r} has no training videos")
    sft_rows = task.load_sft(job.data_path(), job.resolved_split()) if "sft" in stages else []
    sources = dict(getattr(task, "train_sources", {}))
    rl_videos: list[TrainVideo] = task.load_train(job.data_path(), job.resolved_split()) \
        if "grpo" in stages else []
    sources.update(getattr(task, "train_sources", {}))
    model, mode = _start_model(cfg, job.stage)
    tpl = template(cfg.prompt_file)
    engine = HFEngine(model=model, device=job.device, dtype=job.dtype,
                      batch_size=cfg.batch_size, seed=job.seed)
    try:
        policy = Policy(engine, mode, cfg.lora_rank, cfg.lora_alpha, seed=job.seed,
                        reference=False)
        cache: dict[str, Clip] = {}
        use_cache = cfg.cache_inputs if cfg.cache_inputs is not None else \
            len(sft_rows) + len(rl_videos) <= 256

        def clip_of(video: TrainVideo) -> Clip:
            if video.video_id in cache:
                return cache[video.video_id]
            clip = read_clip(video, cfg.frames, cfg.max_pixels)
            if use_cache:
                cache[video.video_id] = clip
            return clip

        log = StepLog(job)
        summary: dict[str, Any] = {"stages": list(stages), "mode": mode,
                                   "trained_parameters": policy.parameter_count()}
        t0 = time.perf_counter()
        if "sft" in stages:
            q = reasoning_query(tpl)
            tok = engine.loaded.tokenizer
            examples = [SFTExample(r.video.video_id,
                                   engine.encoder.encode(clip_request(q, clip_of(r.video))),
                                   target_ids(tok, r.think, r.answer)) for r in sft_rows]
            summary["sft"] = run_sft(policy, examples, cfg.sft(), job.seed, log)
            summary["sft"]["seconds"] = round(time.perf_counter() - t0, 1)
        if "grpo" in stages:
            t1 = time.perf_counter()
            if cfg.beta > 0:
                policy.reset_reference()
            q = reasoning_query(tpl, max_new_tokens=cfg.max_completion_length)
            loop = AVAGRPO(policy, engine, q, cfg.ava(), rl_videos, clip_of, seed=job.seed)
            summary["grpo"] = loop.run(log)
            summary["grpo"]["seconds"] = round(time.perf_counter() - t1, 1)
            labels = [v.label for v in rl_videos]
            summary["grpo"].update(abnormal_videos=int(sum(labels)),
                                   normal_videos=len(labels) - int(sum(labels)))
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        meta = {"stages": list(stages), "task": job.task, "split": job.resolved_split(),
                "init": cfg.init, "prompt": {"source": tpl.source, "system": tpl.system,
                                             "user": tpl.user},
                "config": dataclasses.asdict(cfg), "sources": sources, "seed": job.seed,
                "engine": engine.describe(), "summary": summary}
        policy.save(job.out, meta)
        return TrainResult(job.out, summary)
    finally:
        engine.close()
