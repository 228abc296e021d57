"""AVA-GRPO, Vad-R1's second stage (§3.3, Appendix C.2, Algorithms 1 and 2), on video-level labels.

One step, for each of ``batch_videos`` videos of Vad-Reasoning-RL:

1. ``G`` completions of the P2C-CoT prompt are sampled from the policy (the ``hf`` engine, the
   full distribution at ``temperature``: :func:`methods.rl.rollout.sample_groups`).
2. Rewards (:mod:`methods.vad_r1.rewards`, Table 7): accuracy, format, length, and the anomaly
   verification of Algorithm 1: every completion with a readable class gets ONE re-query, a new
   completion sampled from the same policy on a trimmed video (:mod:`methods.vad_r1.trim`):
   an "abnormal" answer's predicted ``<when>`` interval removed (no interval: no re-query), a
   "normal" answer's head or tail removed. Abnormal then normal: +0.5; normal then abnormal:
   -0.2. A trim that would leave no frame is not re-queried (reward 0).
3. The summed reward is group-normalised and the shared GRPO objective
   (:func:`methods.rl.grpo.grpo_loss`) is minimised: one update per batch of completions, so
   the ratio is 1 in value (Appendix C.2's ``pi_theta_no_grad``), k3 KL to the reference
   (the policy as the stage starts) weighted by ``beta``.

Switches for Table 10's rows: ``verification`` and ``length_reward`` (both off: the original
GRPO with accuracy and format rewards).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.engines.base import Request
from harness.engines.hf import HFEngine
from methods.rl.grpo import GRPOConfig, adamw_linear, group_advantages, grpo_loss, optimizer_step
from methods.rl.rollout import epoch_batches, sample_groups
from methods.vad_r1.inputs import Clip, clip_request
from methods.vad_r1.policy import Policy
from methods.vad_r1.rewards import (
    RewardValues,
    accuracy_reward,
    format_reward,
    length_reward,
    predicted_normal,
    verification_reward,
)
from methods.vad_r1.trim import trim_head_or_tail, trim_interval
from tasks.answers import parse_vad_r1
from tasks.base import Query
from tasks.training import TrainVideo


@dataclass(frozen=True)
class AVAConfig:
    """AVA-GRPO settings; defaults from Vad-R1 (Appendix C.3, ``run_grpo_video.sh``: G 4,
    beta 0.04, lr 1e-6, weight decay 0.01, gradient norm 5, 768 completion tokens, 1 epoch)."""

    grpo: GRPOConfig = field(default_factory=lambda: GRPOConfig(
        num_generations=4, beta=0.04, learning_rate=1e-6, weight_decay=0.01, max_grad_norm=5.0,
        max_completion_length=768))
    rewards: RewardValues = RewardValues()
    verification: bool = True
    length_reward: bool = True
    trim_fraction: float = 0.25
    batch_videos: int = 1
    epochs: float = 1.0
    steps: int | None = None

    def total_steps(self, n_videos: int) -> int:
        if self.steps is not None:
            return max(1, self.steps)
        return max(1, math.ceil(math.ceil(n_videos / self.batch_videos) * self.epochs))


@dataclass
class Verification:
    """Per completion: its class, the trim applied and the re-query's class."""

    first: list[bool | None]
    second: list[bool | None]
    trims: list[str]


def verification_trims(texts: Sequence[str], clip: Clip, rng: np.random.Generator,
                       fraction: float) -> tuple[list[bool | None], list[np.ndarray | None],
                                                 list[str]]:
    """Algorithm 1, lines 3-9, for completions of one video: per completion its class
    (None: unreadable), the frame indices to show again (None: no re-query) and what was
    removed (``"interval [a, b]"``, ``"head"``, ``"tail"``, or why nothing)."""
    classes, kept, what = [], [], []
    for text in texts:
        pred = predicted_normal(text)
        classes.append(pred)
        idx: np.ndarray | None = None
        if pred is None:
            note = "no class"
        elif pred:
            idx, note = trim_head_or_tail(clip.indices, rng, fraction)
        else:
            when = parse_vad_r1(text).when
            if when is None:
                note = "no interval"
            else:
                idx = trim_interval(clip.indices, clip.num_frames, when)
                note = f"interval [{when[0]:.3f}, {when[1]:.3f}]"
        if idx is not None and len(idx) == 0:
            idx, note = None, note + " (nothing left)"
        kept.append(idx)
        what.append(note)
    return classes, kept, what


class AVAGRPO:
    """The stage's loop. ``clip_of`` reads (and may cache) a video's clip."""

    def __init__(self, policy: Policy, engine: HFEngine, query: Query, cfg: AVAConfig,
                 videos: Sequence[TrainVideo], clip_of: Callable[[TrainVideo], Clip],
                 seed: int = 0) -> None:
        if not videos:
            raise ValueError("AVA-GRPO needs training videos")
        self.policy, self.engine, self.query, self.cfg = policy, engine, query, cfg
        self.videos, self.clip_of, self.seed = list(videos), clip_of, seed
        self.total_steps = cfg.total_steps(len(self.videos))
        self.params = policy.parameters()
        self.optimizer, self.scheduler = adamw_linear(
            self.params, cfg.grpo.learning_rate, cfg.grpo.weight_decay, self.total_steps)

    def _requery(self, clips: Sequence[Clip], kept: Sequence[np.ndarray | None],
                 seed: int) -> list[bool | None]:
        """One completion per trimmed clip (None where there is none)."""
        g = self.cfg.grpo
        lora = self.policy.lora_ref()
        reqs: list[Request] = []
        where: list[int] = []
        for i, idx in enumerate(kept):
            if idx is None:
                continue
            clip = clips[i // g.num_generations].keep(idx)
            req = clip_request(self.query, clip, seed + i, f"requery:{i}", lora)
            sp = req.sampling
            reqs.append(Request(req.messages, type(sp)(
                max_new_tokens=g.max_completion_length, temperature=g.temperature, top_p=1.0,
                seed=seed + i), lora, req.request_id))
            where.append(i)
        out: list[bool | None] = [None] * len(kept)
        if reqs:
            for i, resp in zip(where, self.engine.generate(reqs), strict=True):
                out[i] = predicted_normal(resp.completions[0].text)
        return out

    def step(self, step: int, batch: Sequence[TrainVideo]) -> dict[str, Any]:
        cfg, g = self.cfg, self.cfg.grpo
        n = g.num_generations
        t0 = time.perf_counter()
        clips = [self.clip_of(v) for v in batch]
        lora = self.policy.lora_ref()
        reqs = [clip_request(self.query, c, request_id=f"grpo:{step}:{i}")
                for i, c in enumerate(clips)]
        base_seed = (self.seed * 1_000_003 + step) * 64
        groups = sample_groups(self.engine, reqs, n, g.temperature, g.max_completion_length,
                               loras=[lora] * len(reqs) if lora is not None else None,
                               seed=base_seed)
        labels = [bool(v.label) for v in batch]
        abnormal = [labels[i // n] for i in range(len(groups))]
        vals = cfg.rewards
        acc = [accuracy_reward(t, a, vals) for t, a in zip(groups.texts, abnormal, strict=True)]
        fmt = [format_reward(t, vals) for t in groups.texts]
        length = [length_reward(t, a, vals) if cfg.length_reward else 0.0
                  for t, a in zip(groups.texts, abnormal, strict=True)]
        verify = [0.0] * len(groups)
        trims: list[str] = []
        if cfg.verification:
            rng = np.random.default_rng([self.seed, step])
            first: list[bool | None] = []
            kept: list[np.ndarray | None] = []
            for j, clip in enumerate(clips):
                c, k, w = verification_trims(groups.texts[j * n:(j + 1) * n], clip, rng,
                                             cfg.trim_fraction)
                first += c
                kept += k
                trims += w
            second = self._requery(clips, kept, base_seed + 32)
            verify = [verification_reward(a, b, vals) for a, b in zip(first, second, strict=True)]
        rewards = [sum(r) for r in zip(acc, fmt, verify, length, strict=True)]
        adv = group_advantages(torch.tensor(rewards), n, g.adv_eps)
        t1 = time.perf_counter()
        prompts = [groups.prompts[i // n] for i in range(len(groups))]
        logp, mask = self.policy.logprobs(prompts, groups.token_ids, g.temperature)
        ref = self.policy.ref_logprobs(prompts, groups.token_ids, g.temperature) \
            if g.beta > 0 else None
        out = grpo_loss(logp, logp.detach(), adv.to(logp.device), mask, ref, g.beta, g.epsilon,
                        g.epsilon_high)
        out.loss.backward()
        lr = self.scheduler.get_last_lr()[0]
        norm = optimizer_step(self.optimizer, self.scheduler, self.params, g.max_grad_norm)
        self.policy.updated()
        return {"stage": "grpo", "step": step + 1, "loss": float(out.loss.detach()),
                "reward": float(np.mean(rewards)), "accuracy": float(np.mean(acc)),
                "format": float(np.mean(fmt)), "verification": float(np.mean(verify)),
                "length": float(np.mean(length)), "kl": out.kl, "grad_norm": norm, "lr": lr,
                "completion_tokens": float(mask.sum(1).mean()),
                "videos": [v.video_id for v in batch], "trims": trims,
                "sample_s": round(t1 - t0, 3), "update_s": round(time.perf_counter() - t1, 3)}

    def batches(self) -> list[list[TrainVideo]]:
        """``total_steps`` batches: epochs of the videos in a seeded random order."""
        return epoch_batches(self.videos, self.cfg.batch_videos, self.total_steps,
                             np.random.default_rng([self.seed, 7]))

    def run(self, log: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        rows = [log(self.step(i, b)) for i, b in enumerate(self.batches())]
        k = max(1, len(rows) // 5)
        return {"steps": len(rows), "videos": len(self.videos),
                "first_reward_mean": float(np.mean([r["reward"] for r in rows[:k]])),
                "final_reward_mean": float(np.mean([r["reward"] for r in rows[-k:]])),
                "first_accuracy_mean": float(np.mean([r["accuracy"] for r in rows[:k]])),
                "final_accuracy_mean": float(np.mean([r["accuracy"] for r in rows[-k:]]))}
