"""Teacher-forced log-probabilities of given completions: what policy-gradient and preference
losses (GRPO, DPO) differentiate.

:func:`completion_logprobs` runs one forward pass over ``prompt + completion`` for every row,
with gradients when the caller enables them, and returns the log-probability of each
completion token. The batch layout is ``[left padding | prompt | completion | right padding]``:
prompts are left-padded as in :mod:`harness.models.decode` (so positions, M-RoPE included, are
the ones generation used), completions are right-padded and masked. Only the last ``T + 1``
positions' logits are computed (``logits_to_keep``), so the ``(N, T, V)`` logits of a long
video prompt are never materialised for the prompt part.

Conventions: log-probabilities are natural, of the float32 ``log_softmax`` of the logits
divided by ``temperature`` (1: raw), or, for rows with ``allowed`` token ids, of that
distribution renormalised over them (the rule :func:`harness.models.decode.generate_batch`
samples constrained rows with). Completion
tokens are exactly what generation returned (an EOS kept at the end is scored like any other
token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.models.decode import allowed_mask, collate, model_inputs, prefill_positions
from harness.models.prompt import EncodedPrompt


def completion_logprobs(
    model: Any, family: str, prompts: Sequence[EncodedPrompt],
    completions: Sequence[Sequence[int]], *, pad_id: int, device: torch.device,
    dtype: torch.dtype, allowed: Sequence[tuple[int, ...]] | None = None,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Log-probabilities of ``completions[i]`` after ``prompts[i]``.

    Args:
        model: the (possibly LoRA-hooked) vision-language or text-only model.
        prompts: ``N`` encoded prompts (visual inputs included).
        completions: ``N`` token-id lists (may be empty).
        allowed: per row, the token ids its completion was constrained to (empty = none).
        temperature: score under ``softmax(logits / temperature)``, the distribution a
            sampler at that temperature draws from (TRL's GRPO convention; 1 = raw).

    Returns:
        ``(logp (N, T) float32, mask (N, T) float32)`` with ``T`` the longest completion;
        ``mask`` is 1 on real completion tokens. ``logp`` carries the graph when gradients
        are enabled.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    n = len(prompts)
    t_max = max(1, max((len(c) for c in completions), default=0))
    batch = collate(list(prompts), family, pad_id, device, dtype)
    comp = torch.full((n, t_max), pad_id, dtype=torch.long)
    cmask = torch.zeros((n, t_max), dtype=torch.long)
    for i, c in enumerate(completions):
        if len(c):
            comp[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            cmask[i, : len(c)] = 1
    comp, cmask = comp.to(device), cmask.to(device)
    batch["input_ids"] = torch.cat([batch["input_ids"], comp], dim=1)
    batch["attention_mask"] = torch.cat([batch["attention_mask"], cmask], dim=1)
    batch["mm_token_type_ids"] = torch.cat(
        [batch["mm_token_type_ids"], torch.zeros_like(comp)], dim=1)
    position_ids, _ = prefill_positions(model, family, batch)
    inputs = model_inputs(batch, family)
    out = model(**inputs, position_ids=position_ids, use_cache=False, logits_to_keep=t_max + 1)
    logits = out.logits[:, :-1, :].float()  # position p predicts token p + 1
    if temperature != 1.0:
        logits = logits / temperature
    if allowed is not None:
        mask = allowed_mask(list(allowed), logits.shape[-1], logits.device)
        if mask is not None:
            logits = logits.masked_fill(~mask[:, None, :], float("-inf"))
    logp = torch.log_softmax(logits, dim=-1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)
    m = cmask.to(torch.float32)
    return torch.where(m > 0, logp, torch.zeros_like(logp)), m
