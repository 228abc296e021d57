"""Batched, left-padded, KV-cached decoding with raw log-probabilities.

A batch of :class:`DecodeRow` (one prompt + its decoding settings each) is left-padded into one
tensor, prefilled once, then decoded one token per step with the model's KV cache. Every row
is independent of the others:

* positions are computed per row from the attention mask (Qwen-VL: M-RoPE ``(3, B, L)`` from
  the model's own ``get_rope_index`` over the unpadded tokens; InternVL and text-only models:
  plain 1-D ``cumsum(mask) - 1``), so left padding never shifts a row's positions, and padded
  keys are masked out;
* sampling draws from a per-row ``torch.Generator`` seeded from the row's seed, one draw per
  step, so a row's samples do not depend on which rows share its batch.

Log-probabilities are ``log_softmax`` of the raw float32 logits (never temperature- or top-p-
modified); a row with ``allowed_ids`` decodes from the logits restricted to those tokens, and
its log-probabilities are those of that renormalised distribution. Greedy is
``temperature == 0`` (argmax, first index on ties). Visual placeholder tokens
(:func:`placeholder_ids`) are never chosen, greedy or sampled (a random tiny model would
otherwise emit them); the log-probabilities reported stay those of the full distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.models.prompt import EncodedPrompt

#: families with M-RoPE positions ``(3, B, L)``, whose forward also takes ``mm_token_type_ids``;
#: the others (``internvl``, ``text``) have plain positions ``(B, L)``.
MROPE_FAMILIES = frozenset({"qwen2_vl", "qwen2_5_vl"})


@dataclass
class DecodeRow:
    """One sequence to generate. ``top_k``: how many top log-probs to keep per step (0: none)."""

    prompt: EncodedPrompt
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    target_ids: tuple[int, ...] = ()
    allowed_ids: tuple[int, ...] = ()


@dataclass
class DecodeResult:
    """``top``: per step, ``[(token_id, logprob), ...]`` best first. ``stop_index``: where the
    first stop string starts in the decoded text, when a stop string ended generation."""

    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    targets: list[list[float]] = field(default_factory=list)
    finish_reason: str = "length"
    stop_index: int | None = None


def collate(
    prompts: Sequence[EncodedPrompt], family: str, pad_id: int, device: torch.device,
    dtype: torch.dtype,
) -> dict[str, Any]:  # fmt: skip
    """Left-pad prompts into model kwargs: ``input_ids``/``attention_mask``/
    ``mm_token_type_ids`` ``(B, L)`` long, plus the concatenated visual tensors (none for
    text models). Pass the result through :func:`model_inputs` before the forward."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    types = torch.zeros((len(prompts), width), dtype=torch.long)
    for b, p in enumerate(prompts):
        n = len(p)
        ids[b, width - n :] = torch.tensor(p.input_ids, dtype=torch.long)
        types[b, width - n :] = torch.tensor(p.mm_token_type_ids, dtype=torch.long)
        mask[b, width - n :] = 1
    out: dict[str, Any] = {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "mm_token_type_ids": types.to(device),
    }

    def cat(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(arrays, axis=0)).to(device=device, dtype=dtype)

    images = [a for p in prompts for a in p.image_pixels]
    videos = [a for p in prompts for a in p.video_pixels]
    if family == "internvl":
        if images:
            out["pixel_values"] = cat(images)
        return out
    if images:
        out["pixel_values"] = cat(images)
        out["image_grid_thw"] = torch.tensor([g for p in prompts for g in p.image_grids]).to(device)
    if videos:
        out["pixel_values_videos"] = cat(videos)
        out["video_grid_thw"] = torch.tensor([g for p in prompts for g in p.video_grids]).to(device)
        if family == "qwen2_5_vl":
            secs = [s for p in prompts for s in p.second_per_grid_ts]
            out["second_per_grid_ts"] = torch.tensor(secs, dtype=torch.float32, device=device)
    return out


def model_inputs(batch: dict[str, Any], family: str) -> dict[str, Any]:
    """The :func:`collate` kwargs the model's forward takes: ``mm_token_type_ids`` only for
    :data:`MROPE_FAMILIES`."""
    if family in MROPE_FAMILIES:
        return dict(batch)
    return {k: v for k, v in batch.items() if k != "mm_token_type_ids"}


def prefill_positions(
    model: Any, family: str, batch: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Position ids for the padded prompt and each row's next position ``(B,)``.

    Qwen-VL: ``(3, B, L)`` from ``model.model.get_rope_index`` (pads get 0); InternVL and text
    models: ``(B, L)`` ``cumsum(mask) - 1`` (pads 0).
    """
    mask = batch["attention_mask"]
    if family not in MROPE_FAMILIES:
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return pos, mask.sum(-1)
    kwargs = {
        k: batch[k]
        for k in ("image_grid_thw", "video_grid_thw", "second_per_grid_ts")
        if k in batch
    }
    pos, deltas = model.model.get_rope_index(
        batch["input_ids"], mm_token_type_ids=batch["mm_token_type_ids"], attention_mask=mask,
        **kwargs,
    )  # fmt: skip
    return pos, mask.sum(-1) + deltas.view(-1).to(mask.device)


def _step_positions(family: str, next_pos: torch.Tensor) -> torch.Tensor:
    """Positions of one decoding step: ``(B, 1)``, or ``(3, B, 1)`` for M-RoPE."""
    if family not in MROPE_FAMILIES:
        return next_pos.view(-1, 1)
    return next_pos.view(1, -1, 1).expand(3, -1, 1)


def _sample(
    logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator
) -> torch.Tensor:
    """One draw from ``softmax(logits / T)`` restricted to the top-p nucleus.

    ``logits``: ``(V,)`` float32; returns a 0-d long tensor on the same device (no host sync).
    """
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = (sorted_p.cumsum(0) - sorted_p) < top_p  # always keeps the most likely token
        pick = torch.multinomial(sorted_p * keep, 1, generator=gen)
        return order[pick][0]
    return torch.multinomial(probs, 1, generator=gen)[0]


def allowed_mask(allowed: Sequence[tuple[int, ...]], vocab: int, device: torch.device
                 ) -> torch.Tensor | None:
    """``(B, vocab)`` bool, True where row ``b`` may emit the token (an empty tuple allows all);
    ``None`` when no row is constrained."""
    if not any(allowed):
        return None
    mask = torch.ones((len(allowed), vocab), dtype=torch.bool)
    for b, ids in enumerate(allowed):
        if ids:
            if max(ids) >= vocab or min(ids) < 0:
                raise ValueError(f"allowed token ids {ids} outside the vocabulary ({vocab})")
            mask[b] = False
            mask[b, list(ids)] = True
    return mask.to(device)


def placeholder_ids(model: Any) -> tuple[int, ...]:
    """The model's visual placeholder tokens (Qwen's ``<|image_pad|>`` / ``<|video_pad|>``,
    InternVL's ``<IMG_CONTEXT>``): prompt-only tokens that a generated completion must never
    contain (a completion holding one could not be scored or continued, since every such token
    in the input expects visual features). Read from the config's ``*_token_id`` /
    ``*_token_index`` fields."""
    cfg = model.config
    ids = {getattr(cfg, k, None) for k in ("image_token_id", "video_token_id",
                                           "image_token_index", "video_token_index")}
    return tuple(sorted(int(i) for i in ids if isinstance(i, int) and i >= 0))


def generate_batch(
    model: Any,
    family: str,
    rows: Sequence[DecodeRow],
    *,
    pad_id: int,
    eos_ids: set[int],
    device: torch.device,
    dtype: torch.dtype,
    decode_text: Callable[[list[int]], str],
) -> list[DecodeResult]:
    """Generate for every row (see module docstring); results in row order.

    A row stops at an EOS token (kept in ``token_ids``), when its decoded text contains a stop
    string (``stop_index`` set; tokens up to the completing one kept), both ``finish_reason
    "stop"``, or after ``max_new_tokens`` (``"length"``).
    """
    batch = collate([r.prompt for r in rows], family, pad_id, device, dtype)
    position_ids, next_pos = prefill_positions(model, family, batch)
    mask = batch["attention_mask"]
    inputs = model_inputs(batch, family)
    gens = [
        torch.Generator(device=device).manual_seed(r.seed) if r.temperature > 0 else None
        for r in rows
    ]
    results = [DecodeResult() for _ in rows]
    done = [r.max_new_tokens <= 0 for r in rows]
    k_max = max((r.top_k for r in rows), default=0)
    out = model(**inputs, position_ids=position_ids, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    step = 0
    allowed = allowed_mask([r.allowed_ids for r in rows], out.logits.shape[-1], device)
    banned = list(placeholder_ids(model))
    while not all(done):
        logits = out.logits[:, -1, :].float()
        if allowed is not None:  # constrained rows: the distribution renormalised over them
            logits = logits.masked_fill(~allowed, float("-inf"))
        logprobs = torch.log_softmax(logits, dim=-1)
        pick = logits
        if banned:  # never chosen; the reported log-probs stay the model's own
            pick = logits.clone()
            pick[:, banned] = float("-inf")
        choice = pick.argmax(dim=-1)
        for b, row in enumerate(rows):
            gen = gens[b]
            if gen is not None and not done[b]:
                choice[b] = _sample(pick[b], row.temperature, row.top_p, gen)
        chosen_lp = logprobs.gather(1, choice[:, None])[:, 0]
        # one device -> host transfer per step
        tokens: list[int] = choice.tolist()
        token_lps: list[float] = chosen_lp.tolist()
        tops: list[list[tuple[int, float]]] = [[] for _ in rows]
        if k_max:
            top_v, top_i = logprobs.topk(k_max, dim=-1)
            pairs = zip(top_i.tolist(), top_v.tolist(), strict=True)
            tops = [[(t, lp) for t, lp in zip(i, v, strict=True) if lp != float("-inf")]
                    for i, v in pairs]  # constrained rows: disallowed tokens are not alternatives
        next_tokens: list[int] = []
        for b, row in enumerate(rows):
            if done[b]:
                next_tokens.append(pad_id)
                continue
            tok = tokens[b]
            res = results[b]
            res.token_ids.append(tok)
            res.token_logprobs.append(token_lps[b])
            if row.top_k:
                res.top.append(tops[b][: row.top_k])
            if row.target_ids:
                res.targets.append(logprobs[b, list(row.target_ids)].tolist())
            next_tokens.append(tok)
            if tok in eos_ids:
                res.finish_reason, done[b] = "stop", True
            elif row.stop:
                text = decode_text(res.token_ids)
                hits = [i for i in (text.find(s) for s in row.stop if s) if i >= 0]
                if hits:
                    res.finish_reason, res.stop_index, done[b] = "stop", min(hits), True
            if not done[b] and len(res.token_ids) >= row.max_new_tokens:
                res.finish_reason, done[b] = "length", True
        if all(done):
            break
        step_ids = torch.tensor(next_tokens, dtype=torch.long, device=device).view(-1, 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = _step_positions(family, next_pos + step)
        out = model(
            input_ids=step_ids, attention_mask=mask, position_ids=pos,
            past_key_values=cache, use_cache=True,
        )  # fmt: skip
        cache = out.past_key_values
        step += 1
    return results
