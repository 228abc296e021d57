"""Vad-R1's first stage: supervised fine-tuning on Vad-Reasoning-SFT chains of thought.

The target of a video is its annotated ``think`` then ``answer`` (joined by a newline, as one
assistant turn) followed by the chat template's end-of-turn token; the prompt is the P2C-CoT
question with the video's 16 frames (:mod:`methods.vad_r1.inputs`), exactly what inference
sends. The loss is the mean negative log-likelihood over all target tokens of a batch
(teacher-forced, :func:`harness.models.score.completion_logprobs`), prompt tokens unscored.
Optimiser: AdamW with linear decay to 0 and gradient clipping
(:func:`methods.rl.grpo.adamw_linear`), ``grad_accum`` micro-batches per step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.models.prompt import EncodedPrompt
from methods.rl.grpo import adamw_linear, optimizer_step
from methods.rl.rollout import epoch_batches
from methods.vad_r1.policy import Policy


@dataclass(frozen=True)
class SFTExample:
    """One encoded training pair: the prompt (video included) and the target token ids."""

    video_id: str
    prompt: EncodedPrompt
    target: list[int]


def end_of_turn_id(tokenizer: Any) -> int:
    """The token that ends an assistant turn: ``<|im_end|>`` (Qwen / InternVL chat format)
    when the vocabulary has it, else the tokenizer's EOS."""
    tid = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
        return tid
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has neither <|im_end|> nor an EOS token")
    return int(tokenizer.eos_token_id)


def target_ids(tokenizer: Any, think: str, answer: str) -> list[int]:
    """Token ids of ``think + "\\n" + answer`` plus the end-of-turn token."""
    ids = tokenizer.encode(f"{think.strip()}\n{answer.strip()}", add_special_tokens=False)
    return [int(i) for i in ids] + [end_of_turn_id(tokenizer)]


def sft_loss(policy: Policy, batch: Sequence[SFTExample]) -> tuple[torch.Tensor, int]:
    """``(mean NLL over the batch's target tokens, token count)``, with gradients."""
    logp, mask = policy.logprobs([e.prompt for e in batch], [e.target for e in batch])
    n = int(mask.sum().item())
    return -(logp * mask).sum() / max(n, 1), n


@dataclass(frozen=True)
class SFTConfig:
    """Defaults: Vad-R1's SFT (lr 1e-6, 4 epochs, batch 1, gradient accumulation 2)."""

    learning_rate: float = 1e-6
    epochs: float = 4.0
    steps: int | None = None
    batch_size: int = 1
    grad_accum: int = 2
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    def total_steps(self, n_examples: int) -> int:
        if self.steps is not None:
            return max(1, self.steps)
        per_epoch = math.ceil(n_examples / (self.batch_size * self.grad_accum))
        return max(1, math.ceil(per_epoch * self.epochs))


def run_sft(policy: Policy, examples: Sequence[SFTExample], cfg: SFTConfig, seed: int,
            log: Any) -> dict[str, Any]:
    """Train ``policy`` on ``examples`` (seeded epochs in random order); ``log`` gets one row
    per optimiser step. Returns a summary."""
    if not examples:
        raise ValueError("SFT needs at least one example")
    total = cfg.total_steps(len(examples))
    params = policy.parameters()
    opt, sched = adamw_linear(params, cfg.learning_rate, cfg.weight_decay, total)
    micro = epoch_batches(examples, cfg.batch_size, total * cfg.grad_accum,
                          np.random.default_rng(seed))
    losses: list[float] = []
    for step in range(total):
        t0 = time.perf_counter()
        step_loss, tokens = 0.0, 0
        for batch in micro[step * cfg.grad_accum:(step + 1) * cfg.grad_accum]:
            loss, n = sft_loss(policy, batch)
            (loss / cfg.grad_accum).backward()
            step_loss += float(loss.detach()) / cfg.grad_accum
            tokens += n
        lr = sched.get_last_lr()[0]
        norm = optimizer_step(opt, sched, params, cfg.max_grad_norm)
        policy.updated()
        losses.append(step_loss)
        log({"stage": "sft", "step": step + 1, "loss": step_loss, "tokens": tokens,
             "grad_norm": norm, "lr": lr, "step_s": round(time.perf_counter() - t0, 3)})
    k = max(1, total // 5)
    return {"steps": total, "examples": len(examples), "first_loss": float(np.mean(losses[:k])),
            "final_loss": float(np.mean(losses[-k:]))}
