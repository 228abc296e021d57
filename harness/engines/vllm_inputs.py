"""Request <-> vLLM conversions for :mod:`harness.engines.vllm` (no vLLM import here).

* :func:`to_prompt`: one :class:`~harness.engines.base.Request` -> a vLLM prompt dict. The chat
  template is rendered by :class:`harness.models.prompt.PromptEncoder` (the ``hf`` engine's
  code), so both engines see the same prompt. Text-only requests are sent as token ids
  (``prompt_token_ids``: the exact ids ``hf`` feeds); requests with images/videos as the
  rendered text with one placeholder per visual plus ``multi_modal_data``, which vLLM's
  processor expands (it tokenises the text the same way).
* Videos: ``VideoPart.frames`` are already sampled and resized by the harness, so they are
  passed with ``do_sample_frames=False`` and metadata (``fps`` = the sampled-frame rate,
  ``frames_indices``, ``total_num_frames``, ``duration``) that Qwen2.5-VL's temporal position
  ids need; ``mm_processor_kwargs`` carry ``fps`` and the same ``min_pixels``/``max_pixels``
  caps as ``hf`` (:class:`~harness.engines.preprocess.QwenVisionSpec`), so vLLM resizes only
  to the multiple-of-28 grid, as ``hf`` does. Limits: one ``fps`` and one pixel cap per
  request (a request mixing images and videos uses the video cap for both).
* :func:`build_rows`: requests -> rows (one per completion: a greedy request with ``n > 1`` is
  decoded once and copied; a sampled one gets ``n`` rows with seeds ``seed * 1_000_003 + j``,
  ``seed = sampling.seed`` or ``engine seed + request index``, as in ``hf``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.engines.base import (
    Completion,
    EngineError,
    ImagePart,
    Request,
    VideoPart,
)
from harness.engines.preprocess import QwenVisionSpec
from harness.models.prompt import PromptEncoder

SEED_MIX = 1_000_003


@dataclass
class Row:
    """One vLLM prompt to decode: the request it belongs to, its seed, and its target ids."""

    owner: int
    prompt: dict[str, Any]
    seed: int | None
    target_texts: tuple[str, ...]
    target_ids: tuple[int, ...]
    lora: str | None  # LoRARef.name


def visual_parts(request: Request) -> list[ImagePart | VideoPart]:
    return [p for m in request.messages for p in m.content if isinstance(p, ImagePart | VideoPart)]


def to_prompt(
    request: Request, encoder: PromptEncoder, family: str, spec: QwenVisionSpec
) -> dict[str, Any]:
    """The vLLM prompt dict of ``request`` (see the module docstring)."""
    visuals = visual_parts(request)
    text = encoder.render(request)
    if not visuals:
        ids = encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
        return {"prompt_token_ids": [int(i) for i in ids]}
    if family == "text":
        raise EngineError("this model is text-only; the request has images or videos")
    images = [np.asarray(p.image) for p in visuals if isinstance(p, ImagePart)]
    videos = [p for p in visuals if isinstance(p, VideoPart)]
    mm: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if images:
        mm["image"] = images if len(images) > 1 else images[0]
    if videos:
        items = []
        for v in videos:
            frames = np.asarray(v.frames)
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise EngineError(f"video frames must be uint8 (T, H, W, 3), got {frames.shape}")
            if v.fps <= 0:
                raise EngineError(f"VideoPart.fps must be positive, got {v.fps}")
            n = int(frames.shape[0])
            idx = list(v.frame_indices) if len(v.frame_indices) == n else list(range(n))
            meta = {
                "fps": float(v.fps),
                "duration": n / float(v.fps),
                "total_num_frames": n,
                "frames_indices": idx,
                "video_backend": "opencv",
                "do_sample_frames": False,
            }
            items.append((frames, meta) if family == "qwen2_5_vl" else frames)
        mm["video"] = items if len(items) > 1 else items[0]
        kwargs.update(do_sample_frames=False, fps=float(videos[0].fps))
    if family in ("qwen2_vl", "qwen2_5_vl"):
        cap = spec.video_max_pixels if videos else spec.max_pixels
        kwargs.update(min_pixels=spec.min_pixels, max_pixels=cap)
    prompt: dict[str, Any] = {"prompt": text, "multi_modal_data": mm}
    if kwargs:
        prompt["mm_processor_kwargs"] = kwargs
    return prompt


def build_rows(
    requests: Sequence[Request],
    encoder: PromptEncoder,
    family: str,
    spec: QwenVisionSpec,
    engine_seed: int,
    target_ids: Callable[[tuple[str, ...]], tuple[tuple[str, ...], tuple[int, ...]]],
) -> list[Row]:
    """Rows of a wave (see the module docstring); prompts are rendered once per request."""
    rows: list[Row] = []
    for i, req in enumerate(requests):
        sp = req.sampling
        if sp.n < 1:
            raise EngineError(f"sampling.n must be >= 1, got {sp.n}")
        if sp.allowed_tokens:
            raise EngineError("the vllm engine does not serve sampling.allowed_tokens "
                              "(renormalised constrained decoding); use the hf engine")
        prompt = to_prompt(req, encoder, family, spec)
        texts, ids = target_ids(tuple(sp.target_tokens))
        base = sp.seed if sp.seed is not None else engine_seed + i
        greedy = sp.temperature <= 0
        for j in range(1 if greedy else sp.n):
            seed = None if greedy else (base * SEED_MIX + j) % (2**63 - 1)
            lora = req.lora.name if req.lora is not None else None
            rows.append(Row(i, prompt, seed, texts, ids, lora))
    return rows


def sampling_kwargs(request: Request, row: Row, eos_ids: Sequence[int]) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one row.

    ``stop_token_ids`` = the engine's EOS set (as ``hf``); EOS is kept in ``token_ids``;
    log-probs are vLLM's raw (pre-temperature) ones. A row with target tokens asks for exactly
    those ids (``logprob_token_ids``, whose log-probs vLLM returns along with the chosen
    token's) instead of the top-k: vLLM returns one or the other.
    """
    sp = request.sampling
    kw: dict[str, Any] = dict(
        n=1,
        max_tokens=int(sp.max_new_tokens),
        temperature=max(float(sp.temperature), 0.0),
        top_p=float(sp.top_p) if sp.temperature > 0 else 1.0,
        seed=row.seed,
        stop=list(sp.stop) or None,
        stop_token_ids=sorted(int(e) for e in eos_ids),
        skip_special_tokens=True,
    )
    if row.target_ids:
        kw["logprob_token_ids"] = list(row.target_ids)
    elif sp.logprobs is not None:
        kw["logprobs"] = int(sp.logprobs)
    return kw


def completion_of(
    output: Any,
    request: Request,
    row: Row,
    text_of: Callable[[int], str],
    decode: Callable[[list[int]], str],
) -> Completion:
    """A vLLM ``CompletionOutput`` -> :class:`Completion` (``hf``'s conventions for keys and
    ordering of ``top_logprobs``; ``target_logprobs`` when target tokens were asked).

    ``text`` is ``decode(token_ids)`` cut before the first stop string, as ``hf`` does (vLLM's
    incremental detokeniser would drop an incomplete trailing UTF-8 sequence instead)."""
    sp = request.sampling
    token_ids = [int(t) for t in output.token_ids]
    steps = list(output.logprobs or [])
    if (sp.logprobs is not None or row.target_ids) and len(steps) != len(token_ids):
        raise EngineError(f"vLLM returned {len(steps)} log-prob steps for {len(token_ids)} tokens")
    token_lps: list[float] = []
    tops: list[dict[str, float]] = []
    targets: list[dict[str, float]] = []
    for tok, step in zip(token_ids, steps, strict=False):
        lps = {int(tid): float(_lp(v)) for tid, v in step.items()}
        chosen_lp = lps[tok]
        token_lps.append(chosen_lp)
        if row.target_ids:
            targets.append({t: lps[i] for t, i in zip(row.target_texts, row.target_ids,
                                                        strict=True)})  # fmt: skip
        d: dict[str, float] = {}
        for tid, lp in sorted(lps.items(), key=lambda kv: -kv[1]):
            d.setdefault(text_of(tid), lp)
        chosen = text_of(tok)
        d[chosen] = max(d.get(chosen, chosen_lp), chosen_lp)
        tops.append(dict(sorted(d.items(), key=lambda kv: -kv[1])))
    finish = output.finish_reason or "length"
    text = decode(token_ids)
    hits = [i for i in (text.find(s) for s in sp.stop if s) if i >= 0]
    if hits:
        text = text[: min(hits)]
    return Completion(
        text=text,
        token_ids=token_ids,
        token_logprobs=token_lps if sp.logprobs is not None else [],
        top_logprobs=tops if sp.logprobs is not None else [],
        target_logprobs=targets,
        finish_reason="stop" if finish == "stop" else "length" if finish == "length" else finish,
    )


def _lp(v: Any) -> float:
    return float(getattr(v, "logprob", v))

