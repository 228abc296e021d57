"""Interactive DPO (iDPO): trajectory-level preference optimisation on the policy's own
rollouts, ranked by the AEI utility.

One round (:meth:`IDPO.round`): ``batch_videos`` training videos, ``rollouts`` sampled
multi-turn reviews of each (:class:`methods.anom_pi.rollout.Reviewer`, temperature
``temperature``, batched), each scored by :func:`methods.anom_pi.aei.aei_utility` with the
video's label; per video the ``pairs_per_video`` best and worst reviews form (chosen, rejected)
pairs when their utilities differ by at least ``min_gap``; one optimiser step of
:func:`methods.rl.dpo.dpo_loss` over the round's pairs against the frozen reference policy (the
policy before training). A trajectory's log-probability is the sum, over its assistant
messages, of the log-probabilities of the tokens the policy emitted (action letters under the
distribution renormalised over the legal letters they were sampled among, reasoning text under
the full vocabulary); observations, prompts and frames are conditioning only
(:func:`trajectory_logprobs`). The reviews are regenerated from the updated policy every round
(on-policy, "interactive").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.engines.hf import HFEngine
from methods.anom_pi.aei import AEIParts, AEIWeights, Step, aei_utility
from methods.anom_pi.diagnostics import action_usage
from methods.anom_pi.rollout import Reviewer, ReviewVideo, Trajectory
from methods.rl.dpo import dpo_loss, sequence_logprob
from methods.rl.policy import VLMPolicy
from methods.rl.rollout import epoch_batches


@dataclass(frozen=True)
class IDPOConfig:
    """iDPO settings (module docstring; defaults are ours, README)."""

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

    def __post_init__(self) -> None:
        if self.rollouts < 2:
            raise ValueError(f"iDPO ranks several rollouts per video: rollouts >= 2, got "
                             f"{self.rollouts}")
        if self.steps < 0 or self.batch_videos < 1 or self.pairs_per_video < 1:
            raise ValueError("steps >= 0, batch_videos >= 1 and pairs_per_video >= 1")
        if self.beta <= 0 or not 0 <= self.label_smoothing < 0.5:
            raise ValueError("beta > 0 and 0 <= label_smoothing < 0.5")
        if self.temperature <= 0:
            raise ValueError("iDPO samples its rollouts: temperature must be > 0")


def trajectory_steps(traj: Trajectory) -> list[Step]:
    """The AEI steps (action turns) of a rollout."""
    return [Step(t.action.kind if t.action is not None else "invalid", t.confidence)
            for t in traj.turns if t.kind == "action"]


def utility(traj: Trajectory, weights: AEIWeights) -> AEIParts:
    """The AEI utility of a rollout of a labelled video."""
    label = traj.video.label
    if label is None:
        raise ValueError(f"video {traj.video.video_id!r} has no label")
    return aei_utility(label, traj.answer, trajectory_steps(traj), traj.state.turns,
                       traj.state.frames_decoded, weights)


def preference_pairs(utilities: Sequence[float], group: int, min_gap: float,
                     pairs_per_video: int = 1) -> list[tuple[int, int]]:
    """``(chosen, rejected)`` rollout indices: ``utilities`` come in consecutive groups of
    ``group`` per video; in each, the ``k``-th best is paired with the ``k``-th worst
    (``k < pairs_per_video``, the best first; ties keep rollout order) when it is better by
    ``min_gap`` or more."""
    if len(utilities) % group:
        raise ValueError(f"{len(utilities)} utilities are not groups of {group}")
    pairs = []
    for lo in range(0, len(utilities), group):
        u = list(utilities[lo:lo + group])
        order = sorted(range(group), key=lambda i: (-u[i], i))
        for k in range(min(pairs_per_video, group // 2)):
            c, r = order[k], order[-1 - k]
            if u[c] - u[r] >= min_gap:
                pairs.append((lo + c, lo + r))
    return pairs


def trajectory_logprobs(policy: VLMPolicy, engine: HFEngine, trajs: Sequence[Trajectory],
                        reference: bool = False, score_batch: int = 8) -> torch.Tensor:
    """``(len(trajs),)`` sums of the log-probabilities of each rollout's own tokens under the
    policy (with gradients) or the reference (``reference``; none). Each assistant message is
    one row: its request (the dialogue before it) is the prompt, its tokens the completion."""
    rows: list[tuple[int, Any, list[int], tuple[int, ...]]] = []
    for k, t in enumerate(trajs):
        for turn in t.turns:
            ids = engine.allowed_ids(turn.allowed) if turn.allowed else ()
            rows.append((k, turn.request, turn.token_ids, ids))
    device = engine.loaded.device
    total: torch.Tensor = torch.zeros(len(trajs), device=device)
    for lo in range(0, len(rows), score_batch):
        chunk = rows[lo:lo + score_batch]
        prompts = [engine.encoder.encode(r) for _, r, _, _ in chunk]
        comps = [c for _, _, c, _ in chunk]
        constrained = [a for _, _, _, a in chunk]
        allowed = constrained if any(constrained) else None
        if reference:
            logp = policy.ref_logprobs(prompts, comps, allowed=allowed)
            mask = (torch.arange(logp.shape[1], device=logp.device)[None, :]
                    < torch.tensor([len(c) for c in comps], device=logp.device)[:, None])
            seq = sequence_logprob(logp, mask.float())
        else:
            logp, mask = policy.logprobs(prompts, comps, allowed=allowed)
            seq = sequence_logprob(logp, mask)
        idx = torch.tensor([k for k, *_ in chunk], device=seq.device)
        total = total.index_add(0, idx, seq.to(total.dtype))
    return total


class IDPO:
    """The training loop (module docstring) over ``videos`` (labelled)."""

    def __init__(self, policy: VLMPolicy, engine: HFEngine, reviewer: Reviewer,
                 videos: Sequence[ReviewVideo], cfg: IDPOConfig, weights: AEIWeights,
                 seed: int = 0) -> None:
        if not videos:
            raise ValueError("iDPO needs training videos")
        if any(v.label not in (0, 1) for v in videos):
            raise ValueError("iDPO needs a video-level label (0/1) on every training video")
        self.policy, self.engine, self.reviewer = policy, engine, reviewer
        self.videos, self.cfg, self.weights, self.seed = list(videos), cfg, weights, seed
        self.optim = torch.optim.AdamW(policy.parameters(), lr=cfg.learning_rate,
                                       weight_decay=cfg.weight_decay)

    def rollouts(self, videos: Sequence[ReviewVideo], step: int) -> list[Trajectory]:
        """``rollouts`` sampled reviews per video, video-major."""
        from dataclasses import replace

        r = self.reviewer
        r.decoding = replace(r.decoding, temperature=self.cfg.temperature,
                             seed=self.seed + 7919 * (step + 1))
        trajs, errors = r.run(videos, self.cfg.rollouts, lora=self.policy.lora_ref())
        if errors:
            names = ", ".join(sorted(errors))
            raise RuntimeError(f"training videos could not be decoded: {names}")
        return trajs

    def round(self, videos: Sequence[ReviewVideo], step: int) -> dict[str, Any]:
        """One round (module docstring); returns its log row."""
        cfg = self.cfg
        t0 = time.perf_counter()
        trajs = self.rollouts(videos, step)
        parts = [utility(t, self.weights) for t in trajs]
        u = [p.utility for p in parts]
        pairs = preference_pairs(u, cfg.rollouts, cfg.min_gap, cfg.pairs_per_video)
        t1 = time.perf_counter()
        row: dict[str, Any] = {
            "step": step, "videos": len(videos), "rollouts": len(trajs), "pairs": len(pairs),
            "aei": float(np.mean(u)), "success": float(np.mean([p.success for p in parts])),
            "informativeness": float(np.mean([p.informativeness for p in parts])),
            "cost": float(np.mean([p.cost for p in parts])),
            "usage": action_usage([t.summary() for t in trajs], self.weights),
            "rollout_s": round(t1 - t0, 3)}
        if pairs:
            self.optim.zero_grad(set_to_none=True)
            stats = []
            for lo in range(0, len(pairs), max(1, cfg.score_batch // 2)):
                chunk = pairs[lo:lo + max(1, cfg.score_batch // 2)]
                chosen = [trajs[c] for c, _ in chunk]
                rejected = [trajs[r] for _, r in chunk]
                both = chosen + rejected
                pol = trajectory_logprobs(self.policy, self.engine, both,
                                          score_batch=cfg.score_batch)
                ref = trajectory_logprobs(self.policy, self.engine, both, reference=True,
                                          score_batch=cfg.score_batch)
                n = len(chunk)
                out = dpo_loss(pol[:n], pol[n:], ref[:n], ref[n:], cfg.beta,
                               cfg.label_smoothing)
                (out.loss * n / len(pairs)).backward()
                stats.append((float(out.loss.detach()) * n, out.accuracy * n,
                              float(out.margins.sum()), float(out.chosen_rewards.sum()),
                              float(out.rejected_rewards.sum())))
            norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
            self.optim.step()
            self.policy.updated()
            tot = np.sum(np.asarray(stats), axis=0) / len(pairs)
            row.update(loss=float(tot[0]), pair_accuracy=float(tot[1]), margin=float(tot[2]),
                       chosen_reward=float(tot[3]), rejected_reward=float(tot[4]),
                       grad_norm=float(norm))
        row["update_s"] = round(time.perf_counter() - t1, 3)
        return row

    def run(self, log: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
        """``cfg.steps`` rounds; the summary holds the first and last rounds' diagnostics and
        the usage of every round (collapse diagnostics over training)."""
        rng = np.random.default_rng(self.seed)
        batches = epoch_batches(self.videos, min(self.cfg.batch_videos, len(self.videos)),
                                self.cfg.steps, rng)
        rows = []
        for step, batch in enumerate(batches):
            row = self.round(batch, step)
            rows.append(row)
            if log is not None:
                log(row)
        def window(part: list[dict[str, Any]]) -> dict[str, Any]:
            if not part:
                return {}
            return {k: round(float(np.mean([r[k] for r in part])), 4)
                    for k in ("aei", "success", "informativeness", "cost")} | {
                "mean_operators": round(float(np.mean([r["usage"]["mean_operators"]
                                                       for r in part])), 4),
                "mean_frames_decoded": round(float(np.mean(
                    [r["usage"]["mean_frames_decoded"] for r in part])), 4)}
        q = max(1, len(rows) // 4)
        return {"steps": len(rows), "pairs": int(sum(r["pairs"] for r in rows)),
                "first_quarter": window(rows[:q]), "last_quarter": window(rows[-q:]),
                "usage_by_step": [{"step": r["step"], "operators": r["usage"]["operators"],
                                   "actions": r["usage"]["actions"],
                                   "mean_turns": r["usage"]["mean_turns"],
                                   "mean_frames_decoded": r["usage"]["mean_frames_decoded"]}
                                  for r in rows]}
