"""Sampling groups of completions and scoring them with gradients: the policy side of GRPO.

A *group* is ``G`` completions of one prompt, sampled through the ``hf`` engine (batched,
seeded, optionally constrained to ``allowed_tokens``, each prompt with its own LoRA adapter
or none). :func:`group_logprobs` then re-scores the sampled tokens teacher-forced (one forward
pass, :func:`harness.models.score.completion_logprobs`) under a policy given as optional
per-prompt LoRA weights hooked onto the frozen backbone (:class:`harness.models.lora.
PerSampleLoRA`), with gradients flowing into those weights when enabled. Rows are
prompt-major: completion ``i`` belongs to prompt ``i // G``, the layout
:func:`methods.rl.grpo.group_advantages` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from harness.engines.base import LoRARef, Request
from harness.engines.hf import HFEngine
from harness.models.lora import PerSampleLoRA
from harness.models.prompt import EncodedPrompt
from harness.models.score import completion_logprobs


@dataclass
class Groups:
    """``P`` prompts and their ``P * G`` sampled completions (prompt-major)."""

    prompts: list[EncodedPrompt]
    num_generations: int
    token_ids: list[list[int]]
    texts: list[str]
    allowed: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.token_ids)


def sample_groups(engine: HFEngine, requests: Sequence[Request], num_generations: int,
                  temperature: float, max_new_tokens: int, allowed_tokens: tuple[str, ...] = (),
                  loras: Sequence[LoRARef | None] | None = None, seed: int = 0,
                  top_p: float = 1.0) -> Groups:
    """Sample ``num_generations`` completions of every request (request ``i`` with seed
    ``seed + i`` and adapter ``loras[i]``). ``top_p < 1`` is refused: the scoring side
    (:func:`group_logprobs`) scores the untruncated distribution."""
    if top_p < 1.0:
        raise ValueError("GRPO rollouts sample the full distribution (top_p = 1): "
                         "teacher-forced scoring does not truncate")
    reqs = []
    for i, req in enumerate(requests):
        sp = replace(req.sampling, n=num_generations, temperature=temperature, top_p=top_p,
                     max_new_tokens=max_new_tokens, allowed_tokens=allowed_tokens,
                     seed=seed + i, logprobs=None, target_tokens=())
        reqs.append(replace(req, sampling=sp, lora=loras[i] if loras is not None else req.lora))
    responses = engine.generate(reqs)
    token_ids = [list(c.token_ids) for r in responses for c in r.completions]
    texts = [c.text for r in responses for c in r.completions]
    prompts = [engine.encoder.encode(r) for r in reqs]
    allowed = engine.allowed_ids(tuple(allowed_tokens)) if allowed_tokens else ()
    return Groups(prompts, num_generations, token_ids, texts, allowed)


def group_logprobs(engine: HFEngine, groups: Groups,
                   lora: PerSampleLoRA | None = None,
                   weights: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                   rows: slice | None = None, temperature: float = 1.0,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logp (N, T), mask (N, T))`` of the groups' completions under the backbone plus,
    if given, per-prompt ``weights`` (``A (P, r, in)``, ``B (P, out, r)``; repeated ``G``
    times here). Gradients flow into ``weights`` when enabled. ``rows`` restricts to a slice
    of completions (micro-batching; it must cover whole groups). ``temperature``: score the
    tempered distribution the completions were sampled from (see
    :func:`harness.models.score.completion_logprobs`)."""
    g = groups.num_generations
    sel = range(len(groups))[rows] if rows is not None else range(len(groups))
    if len(sel) == 0 or sel.step != 1 or sel.start % g or len(sel) % g:
        raise ValueError(f"rows {rows} must select whole groups of {g} completions")
    prompts = [groups.prompts[i // g] for i in sel]
    comps = [groups.token_ids[i] for i in sel]
    lm = engine.loaded
    ctx: AbstractContextManager[None] = nullcontext()
    if lora is not None and weights is not None:
        first, last = sel[0] // g, sel[-1] // g + 1
        ctx = lora.apply({k: (a[first:last].repeat_interleave(g, 0),
                              b[first:last].repeat_interleave(g, 0))
                          for k, (a, b) in weights.items()})
    with ctx:
        return completion_logprobs(
            lm.model, engine.resolved.family, prompts, comps, pad_id=engine.pad_id,
            device=lm.device, dtype=lm.dtype,
            allowed=[groups.allowed] * len(prompts) if groups.allowed else None,
            temperature=temperature)


T = TypeVar("T")


def epoch_batches(items: Sequence[T], batch_size: int, total_steps: int,
                  rng: np.random.Generator) -> list[list[T]]:
    """``total_steps`` batches of ``batch_size`` items: successive epochs, each in a fresh
    random order from ``rng`` (the leftover of one permutation is topped up by the next)."""
    out: list[list[T]] = []
    order: list[int] = []
    while len(out) < total_steps:
        if len(order) < batch_size:
            order += rng.permutation(len(items)).tolist()
        take, order = order[:batch_size], order[batch_size:]
        out.append([items[i] for i in take])
    return out
