"""``vad-eval train --method copra|copra-noprior|copra-static``: GRPO on video-level labels.

One step (COPRA §3 and Appendix A.4, with VLM-R1's defaults, ``../shared/specs/PROTOCOLS.md``
§10):

1. ``batch_videos`` training videos; ``condition_frames`` frames of each, drawn with stride
   ``frames / n`` from its first frame; the backbone's frozen visual tokens of those frames.
2. The network generates each video's LoRA (with gradients). ``G`` completions per video are
   sampled from the adapted policy (the same adapter for all ``G``: the paper's "single adapted
   policy") through the ``hf`` engine, the video's frames and the question as the prompt.
3. Rewards: accuracy (1 if the answer's yes/no equals the video label) plus, in
   ``answer_mode="think"``, VLM-R1's format reward (``<think>...</think><answer>...</answer>``).
   ``answer_mode="constrained"`` (every preset's) samples a single answer token, "Yes" or
   "No", with the frozen baseline's own question: the policy is P(Yes) against P(No) at the
   first answer token, which is what frame scoring reads (over more spellings of yes and no),
   so training and inference ask the same thing; there is no format to reward then.
   ``"think"`` trains a reasoning policy, but frame scoring of such a checkpoint is not
   implemented (the method refuses it).
   The policy is the model's distribution at the sampling ``temperature`` (1 by default, as
   VLM-R1's trainer; TRL's convention otherwise): completions are drawn from it and scored
   under it, the KL reference tempered alike.
4. Group-normalised advantages, the clipped-ratio objective with the k3 KL to the frozen
   backbone (the same prompt without adapter), AdamW with linear decay, clipping at norm 1
   (:mod:`methods.rl.grpo`). Gradients reach the network only, through the generated weights.

Configuration: :class:`CopraTrainConfig` (defaults: the paper's / VLM-R1's), overridden by a
preset or YAML file (``--config``), then by ``--method-arg`` values and ``--steps``. With no
``--config`` the preset whose ``model`` is the job's model is used when there is one (the tiny
default model has ``tiny``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.engines.base import Message, Request, VideoPart
from harness.engines.hf import HFEngine
from harness.models.lora import PerSampleLoRA
from harness.training import (
    StepLog,
    TrainingError,
    TrainJob,
    TrainResult,
    build_config,
    config_values,
)
from harness.video import read_frames
from methods.answering import sampled_fps
from methods.copra.generator import GeneratorConfig
from methods.copra.model import CopraModel, CopraSpec
from methods.frozen import SYSTEM_PROMPT, USER_PROMPT
from methods.rl.grpo import (
    GRPOConfig,
    group_advantages,
    grpo_loss,
    make_optimizer,
    optimizer_step,
    think_answer_format_reward,
    yes_no_accuracy_reward,
)
from methods.rl.rollout import epoch_batches, group_logprobs, sample_groups
from tasks.training import TrainVideo
from tasks.windows import sample_window

PRESETS = Path(__file__).parent / "presets"
THINK_PROMPT = (
    "These frames come from a short clip of a surveillance camera. Is anything abnormal "
    "happening in it, such as a fight, an assault, an accident, a fire or explosion, a theft, "
    "someone falling, or people or vehicles behaving dangerously? Reason about what you see "
    "step by step inside <think> </think> tags, then give the final answer, Yes or No, inside "
    "<answer> </answer> tags."
)
CONSTRAINED_TOKENS = ("Yes", "No")


@dataclass
class CopraTrainConfig:
    """Training settings (defaults: COPRA Appendix A.2 / VLM-R1; see the module docstring)."""

    model: str | None = None
    variant: str = "copra"
    use_prior: bool = GeneratorConfig.use_prior
    rank: int = GeneratorConfig.rank
    width: int = GeneratorConfig.width
    depth: int | None = GeneratorConfig.depth
    heads: int = GeneratorConfig.heads
    lora_alpha: float | None = GeneratorConfig.lora_alpha
    # GRPO: VLM-R1's defaults, from the one GRPO module
    num_generations: int = GRPOConfig.num_generations
    beta: float = GRPOConfig.beta
    epsilon: float = GRPOConfig.epsilon
    epsilon_high: float | None = GRPOConfig.epsilon_high
    learning_rate: float = GRPOConfig.learning_rate
    weight_decay: float = GRPOConfig.weight_decay
    max_grad_norm: float = GRPOConfig.max_grad_norm
    temperature: float = GRPOConfig.temperature
    max_completion_length: int = GRPOConfig.max_completion_length
    answer_mode: str = "constrained"
    batch_videos: int = 1
    epochs: float = 1.0
    steps: int | None = None
    condition_frames: int = 8
    max_pixels: int | None = 448 * 448
    prompt_file: str | None = None
    cache_inputs: bool | None = None
    batch_size: int = 8

    def grpo(self) -> GRPOConfig:
        return GRPOConfig(num_generations=self.num_generations, beta=self.beta,
                          epsilon=self.epsilon, epsilon_high=self.epsilon_high,
                          learning_rate=self.learning_rate, weight_decay=self.weight_decay,
                          max_grad_norm=self.max_grad_norm, temperature=self.temperature,
                          max_completion_length=self.max_completion_length)

    def generator(self) -> GeneratorConfig:
        return GeneratorConfig(rank=self.rank, width=self.width, depth=self.depth,
                               heads=self.heads, use_prior=self.use_prior,
                               lora_alpha=self.lora_alpha)


def load_config(job: TrainJob, variant: str, use_prior: bool) -> CopraTrainConfig:
    """The job's configuration: defaults < preset/file < ``method_args`` < ``--steps``."""
    values, where = config_values(job, PRESETS, "COPRA")
    values.setdefault("variant", variant)
    values.setdefault("use_prior", use_prior)
    if job.steps is not None:
        values["steps"] = job.steps
    cfg = build_config(CopraTrainConfig, values, where, "COPRA",
                       lambda c: (c.grpo(), c.generator()))
    if cfg.answer_mode not in ("think", "constrained"):
        raise TrainingError(f"{where}: answer_mode must be 'think' or 'constrained'")
    if cfg.variant != variant or (variant == "copra" and cfg.use_prior != use_prior):
        raise TrainingError(f"{where}: variant {cfg.variant!r} / use_prior {cfg.use_prior} do "
                            f"not match the method (variant {variant!r}, use_prior "
                            f"{use_prior}); choose the method instead (copra, copra-noprior, "
                            "copra-static)")
    if job.stage is not None:
        raise TrainingError("COPRA has one training stage; --stage does not apply")
    return cfg


@dataclass
class _Input:
    """A training video's prompt frames, their indices and its visual tokens."""

    frames: np.ndarray
    indices: np.ndarray
    tokens: torch.Tensor


class CopraTrainer:
    """The GRPO loop (module docstring). ``engine`` is the ``hf`` engine of the backbone."""

    def __init__(self, cfg: CopraTrainConfig, engine: HFEngine, videos: list[TrainVideo],
                 seed: int = 0) -> None:
        if not videos:
            raise TrainingError("no training videos")
        self.cfg, self.engine, self.videos, self.seed = cfg, engine, videos, seed
        self.grpo = cfg.grpo()
        lm = engine.loaded
        for p in lm.model.parameters():
            p.requires_grad_(False)
        targets = engine.lora_targets()
        text = lm.model.config.get_text_config()
        spec = CopraSpec(cfg.variant, cfg.generator(), targets, int(text.hidden_size),
                         int(text.num_hidden_layers), str(engine.resolved.id))
        self.model = CopraModel(spec, seed=seed).to(lm.device)
        self.hooks = PerSampleLoRA(lm.model, targets, scale=spec.generator.scale())
        default = THINK_PROMPT if cfg.answer_mode == "think" else USER_PROMPT
        self.user_prompt = Path(cfg.prompt_file).read_text(encoding="utf-8").strip() \
            if cfg.prompt_file else default
        self.cache: dict[str, _Input] | None = {} if (
            cfg.cache_inputs if cfg.cache_inputs is not None else len(videos) <= 256) else None
        per_epoch = math.ceil(len(videos) / cfg.batch_videos)
        self.total_steps = cfg.steps or max(1, math.ceil(per_epoch * cfg.epochs))
        self.optimizer, self.scheduler = make_optimizer(
            list(self.model.parameters()), self.grpo, self.total_steps)

    # -- inputs ------------------------------------------------------------------------------
    def _input(self, video: TrainVideo) -> _Input:
        if self.cache is not None and video.video_id in self.cache:
            return self.cache[video.video_id]
        if video.path is None:
            raise TrainingError(f"training video {video.video_id!r} has no file")
        n = video.num_frames
        if n <= 0:
            from harness.video import count_frames

            n = count_frames(video.path)
        idx = sample_window(0, n, self.cfg.condition_frames, "arange")
        frames = read_frames(video.path, idx, max_pixels=self.cfg.max_pixels).take(idx)
        tokens = self.engine.visual_tokens([frames])[0]
        item = _Input(frames, idx, tokens)
        if self.cache is not None:
            self.cache[video.video_id] = item
        return item

    def _request(self, video: TrainVideo, item: _Input) -> Request:
        part = VideoPart(item.frames, fps=sampled_fps(item.indices, video.fps),
                         frame_indices=tuple(int(i) for i in item.indices))
        return Request((Message.system(SYSTEM_PROMPT), Message.user(part, self.user_prompt)))

    def _rewards(self, texts: list[str], labels: list[int]) -> tuple[list[float], list[float],
                                                                    list[float]]:
        g = self.grpo.num_generations
        acc = [yes_no_accuracy_reward(t, bool(labels[i // g]),
                                      tagged=self.cfg.answer_mode == "think")
               for i, t in enumerate(texts)]
        fmt = [think_answer_format_reward(t) if self.cfg.answer_mode == "think" else 0.0
               for t in texts]
        return [a + f for a, f in zip(acc, fmt, strict=True)], acc, fmt

    # -- one step ----------------------------------------------------------------------------
    def step(self, step: int, batch: list[TrainVideo], update: bool = True) -> dict[str, Any]:
        """One GRPO step on ``batch``; ``update=False`` stops after the backward pass (the
        gradients are left in place)."""
        cfg, g = self.cfg, self.grpo.num_generations
        t0 = time.perf_counter()
        items = [self._input(v) for v in batch]
        self.model.train()
        weights = self.model([it.tokens for it in items])
        refs = self.model.refs(weights, [f"train:{step}:{i}" for i in range(len(batch))])
        constrained = cfg.answer_mode == "constrained"
        groups = sample_groups(
            self.engine, [self._request(v, it) for v, it in zip(batch, items, strict=True)],
            g, self.grpo.temperature, 1 if constrained else self.grpo.max_completion_length,
            allowed_tokens=CONSTRAINED_TOKENS if constrained else (), loras=refs,
            seed=(self.seed * 1_000_003 + step) * 64)
        rewards, acc, fmt = self._rewards(groups.texts, [v.label for v in batch])
        adv = group_advantages(torch.tensor(rewards), g, self.grpo.adv_eps)
        t1 = time.perf_counter()
        temp = self.grpo.temperature
        logp, mask = group_logprobs(self.engine, groups, self.hooks, weights, temperature=temp)
        ref = None
        if self.grpo.beta > 0:
            with torch.no_grad():
                ref, _ = group_logprobs(self.engine, groups, temperature=temp)
        out = grpo_loss(logp, logp.detach(), adv.to(logp.device), mask, ref, self.grpo.beta,
                        self.grpo.epsilon, self.grpo.epsilon_high)
        out.loss.backward()
        if not update:
            return {"loss": float(out.loss.detach()), "rewards": rewards}
        lr = self.scheduler.get_last_lr()[0]
        norm = optimizer_step(self.optimizer, self.scheduler, list(self.model.parameters()),
                              self.grpo.max_grad_norm)
        return {"step": step + 1, "loss": float(out.loss.detach()),
                "reward": float(np.mean(rewards)),
                "accuracy": float(np.mean(acc)), "format": float(np.mean(fmt)), "kl": out.kl,
                "clip_fraction": out.clip_fraction, "grad_norm": norm, "lr": lr,
                "videos": [v.video_id for v in batch],
                "sample_s": round(t1 - t0, 3), "update_s": round(time.perf_counter() - t1, 3)}

    def batches(self) -> list[list[TrainVideo]]:
        """``total_steps`` batches: epochs of the videos in a seeded random order."""
        return epoch_batches(self.videos, self.cfg.batch_videos, self.total_steps,
                             np.random.default_rng(self.seed))

    def run(self, log: StepLog) -> dict[str, Any]:
        rows = [log(self.step(i, b)) for i, b in enumerate(self.batches())]
        tail = rows[-max(1, len(rows) // 5):]
        return {"steps": len(rows), "videos": len(self.videos),
                "final_reward_mean": float(np.mean([r["reward"] for r in tail])),
                "first_reward_mean": float(np.mean([r["reward"] for r in
                                                    rows[: max(1, len(rows) // 5)]])),
                "seconds": rows[-1]["elapsed_s"] if rows else 0.0,
                "generator_parameters": self.model.parameter_count(),
                "generated_parameters_per_input": self.model.generated_parameters()}


def train_copra(job: TrainJob, variant: str, use_prior: bool) -> TrainResult:
    """Train a COPRA network for ``job`` and save it to ``job.out``."""
    from harness.registry import TASKS

    cfg = load_config(job, variant, use_prior)
    task: Any = TASKS.get(job.task)(**job.task_args)  # type: ignore[operator]
    load_train = getattr(task, "load_train", None)
    if load_train is None:
        raise TrainingError(f"task {job.task!r} has no training videos (COPRA trains on "
                            "frame-level VAD datasets with video-level labels)")
    videos = load_train(job.data_path(), job.resolved_split())
    engine = HFEngine(model=cfg.model, device=job.device, dtype=job.dtype,
                      batch_size=cfg.batch_size, seed=job.seed)
    try:
        trainer = CopraTrainer(cfg, engine, videos, seed=job.seed)
        log = StepLog(job)
        summary = trainer.run(log)
        labels = [v.label for v in videos]
        summary.update(anomalous_videos=int(sum(labels)),
                       normal_videos=len(labels) - int(sum(labels)))
        extra = {"train": {"config": dataclasses.asdict(cfg), "task": job.task,
                           "user_prompt": trainer.user_prompt, "system_prompt": SYSTEM_PROMPT,
                           "split": job.resolved_split(), "data_root": job.data_root,
                           "seed": job.seed, "sources": getattr(task, "train_sources", {}),
                           "engine": engine.describe(), "summary": summary}}
        trainer.model.save(job.out, extra)
        return TrainResult(job.out, summary)
    finally:
        engine.close()
