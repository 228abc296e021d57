"""Group Relative Policy Optimization: the one GRPO objective of the project.

Used by every method that trains with GRPO (COPRA, Vad-R1's AVA-GRPO). The functions are pure
torch: tensors in, tensors out; the caller samples the completions, scores them and computes
log-probabilities with whatever policy it trains (a frozen backbone plus generated LoRA, a
LoRA-adapted VLM, ...). Defaults follow VLM-R1 (``om-ai-lab/VLM-R1``, open-r1-multimodal
trainer; see ``../shared/specs/PROTOCOLS.md`` §10), which COPRA follows:

* ``G`` completions per prompt; rewards summed over reward functions (weights 1);
* advantage ``A = (r - mean_G(r)) / (std_G(r) + 1e-4)`` with the *unbiased* group std
  (torch's default, as the trainer computes it); a group whose rewards are all equal gets 0;
* per-token ratio ``rho = exp(logp - logp_old)``, clipped surrogate
  ``min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A)``;
* k3 estimator of ``KL(pi || pi_ref)`` per token: ``exp(ref - logp) - (ref - logp) - 1``,
  weighted by ``beta``;
* loss per token ``-(surrogate - beta * kl)``, averaged over each completion's own tokens
  (``mask``), then over completions.

Shapes: ``N`` completions (prompts x G, grouped consecutively: completion ``i`` belongs to
prompt ``i // G``), ``T`` completion tokens (right-padded; ``mask`` is 1 on real tokens).
Log-probabilities are natural-log probabilities of the sampled tokens, shape ``(N, T)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO settings; defaults are VLM-R1's (``grpo_config.py``, ``grpo_trainer.py``).

    Attributes:
        num_generations: ``G``, completions sampled per prompt (8).
        beta: weight of the k3 KL to the reference policy (0.04; 0 drops the reference).
        epsilon: lower clip ``eps_low`` of the ratio (0.2).
        epsilon_high: upper clip (``None``: same as ``epsilon``; VLM-R1's variant uses 0.28).
        learning_rate: AdamW learning rate (1e-6), linearly decayed to 0 over training.
        weight_decay: AdamW weight decay (0.0, transformers' default).
        max_grad_norm: gradient clipping norm (1.0).
        temperature: sampling temperature of the completions (1.0: VLM-R1's trainer
            hard-codes it, whatever the config says). Other values make the trained policy
            the tempered distribution, sampled and scored alike (TRL's convention).
        max_completion_length: new tokens per completion (256).
        num_iterations: optimisation steps per batch of completions (1: then the old policy
            is the current one and the ratio is exactly 1 in value, not in gradient).
        adv_eps: the constant added to the group std (1e-4).
    """

    num_generations: int = 8
    beta: float = 0.04
    epsilon: float = 0.2
    epsilon_high: float | None = None
    learning_rate: float = 1e-6
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    temperature: float = 1.0
    max_completion_length: int = 256
    num_iterations: int = 1
    adv_eps: float = 1e-4

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError(f"GRPO needs num_generations >= 2, got {self.num_generations}")
        if self.beta < 0 or self.epsilon <= 0 or (self.epsilon_high or self.epsilon) <= 0:
            raise ValueError("GRPO: beta must be >= 0 and the clip epsilons > 0")


def group_advantages(rewards: torch.Tensor, num_generations: int, eps: float = 1e-4
                     ) -> torch.Tensor:
    """``(N,)`` advantages of ``(N,)`` rewards grouped by ``num_generations`` consecutive
    completions: ``(r - group mean) / (unbiased group std + eps)``."""
    r = rewards.to(torch.float32)
    if r.ndim != 1 or r.numel() % num_generations:
        raise ValueError(f"rewards {tuple(r.shape)} are not groups of {num_generations}")
    g = r.view(-1, num_generations)
    adv = (g - g.mean(dim=1, keepdim=True)) / (g.std(dim=1, keepdim=True) + eps)
    return adv.reshape(-1)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref) from sampled-token log-probabilities:
    ``exp(ref - logp) - (ref - logp) - 1`` (non-negative, 0 where the two agree)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


@dataclass(frozen=True)
class GRPOLoss:
    """The loss and what a training log wants from one step (all scalars, detached except
    ``loss``)."""

    loss: torch.Tensor
    kl: float
    clip_fraction: float
    mean_ratio: float


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, ref_logp: torch.Tensor | None = None, beta: float = 0.04,
              epsilon: float = 0.2, epsilon_high: float | None = None) -> GRPOLoss:
    """The GRPO objective (module docstring) to minimise.

    Args:
        logp: ``(N, T)`` log-probabilities of the sampled tokens under the policy being
            trained (carries the gradient).
        old_logp: ``(N, T)`` the same under the policy that sampled them (no gradient).
        advantages: ``(N,)`` from :func:`group_advantages`.
        mask: ``(N, T)`` 1 on completion tokens, 0 on padding.
        ref_logp: ``(N, T)`` under the frozen reference policy; required when ``beta > 0``.
        beta, epsilon, epsilon_high: see :class:`GRPOConfig`.
    """
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(f"shapes differ: logp {tuple(logp.shape)}, old {tuple(old_logp.shape)},"
                         f" mask {tuple(mask.shape)}")
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs the reference policy's log-probabilities")
    m = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp.detach())
    adv = advantages.to(logp.dtype).unsqueeze(1)
    hi = 1.0 + (epsilon if epsilon_high is None else epsilon_high)
    clipped = torch.clamp(ratio, 1.0 - epsilon, hi)
    per_token = -torch.min(ratio * adv, clipped * adv)
    kl = torch.zeros_like(logp)
    if beta > 0 and ref_logp is not None:
        kl = k3_kl(logp, ref_logp.detach())
        per_token = per_token + beta * kl
    lengths = m.sum(dim=1).clamp(min=1.0)
    loss = ((per_token * m).sum(dim=1) / lengths).mean()
    with torch.no_grad():
        n = m.sum().clamp(min=1.0)
        was_clipped = ((ratio < 1.0 - epsilon) & (adv < 0)) | ((ratio > hi) & (adv > 0))
        stats = (float((kl * m).sum() / n), float((was_clipped.to(m.dtype) * m).sum() / n),
                 float((ratio * m).sum() / n))
    return GRPOLoss(loss, *stats)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``(N, T)`` log-probabilities of ``tokens`` ``(N, T)`` under ``logits`` ``(N, T, V)``
    (the logits that predict each token, i.e. already shifted by the caller), computed in
    float32 whatever the logits' dtype."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)


def adamw_linear(params: Sequence[torch.Tensor], learning_rate: float, weight_decay: float,
                 total_steps: int
                 ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (transformers' defaults: betas 0.9/0.999, eps 1e-8) at ``learning_rate``, decayed
    linearly to 0 over ``total_steps`` optimiser steps, no warm-up: the optimiser of every
    training stage in the project (GRPO, Vad-R1's SFT)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    opt = torch.optim.AdamW(list(params), lr=learning_rate, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: max(0.0, 1.0 - step / total_steps))
    return opt, sched


def make_optimizer(params: Sequence[torch.Tensor], cfg: GRPOConfig, total_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """:func:`adamw_linear` at ``cfg``'s learning rate and weight decay."""
    return adamw_linear(params, cfg.learning_rate, cfg.weight_decay, total_steps)


def optimizer_step(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR,
                   params: Sequence[torch.Tensor], max_grad_norm: float) -> float:
    """Clip the gradients to ``max_grad_norm`` (total 2-norm), step, advance the schedule and
    zero the gradients; returns the norm before clipping."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return float(norm)


_THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def think_answer_format_reward(text: str) -> float:
    """VLM-R1's format reward: 1.0 when the completion, as decoded, full-matches
    ``<think>...</think>`` then ``<answer>...</answer>`` (whitespace allowed between the two,
    nothing before or after, as the official ``re.fullmatch``), else 0.0."""
    return 1.0 if _THINK_ANSWER.fullmatch(text) else 0.0


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def yes_no_accuracy_reward(text: str, label: bool, tagged: bool = False) -> float:
    """1.0 when the completion's yes/no answer equals ``label`` (True = anomalous), else 0.0.

    The answer is the first yes/no word (:func:`tasks.answers.extract_yes_no`) of the whole
    text, or with ``tagged`` of the first ``<answer>...</answer>`` (no tag: 0.0)."""
    from tasks.answers import extract_yes_no

    if tagged:
        m = _ANSWER.search(text)
        if m is None:
            return 0.0
        text = m.group(1)
    ans = extract_yes_no(text)
    return 1.0 if ans is not None and ans == label else 0.0
