"""HyCoVAD's stage 2: the LLM validator of the proposer's suspect frames (seed 002, §3.3).

For one video, given the frames of the scoring grid (every ``stride``-th frame) and which of
them are suspects:

1. **Captions** (§3.3.1, prompt ``I_G``): the VLM (the run's engine) describes each frame it
   needs, one image per request, greedy, ``caption_max_new_tokens`` (200 in the paper, Table 4).
   Frames captioned: the rule frames, the suspects, and with refinement the suspects'
   neighbours on the grid (``refine_window``); nothing else.
2. **Refinement** (§3.3.2, Eq. 7-11): each suspect's caption is replaced by the caption of its
   local window whose text embedding (sentence chunks of ``m`` sentences overlapping by ``o``,
   embedded and pooled) is most similar to the frame's visual embedding
   (:func:`methods.hycovad.refine.refine_captions`). The visual embedding comes from a joint
   embedder when one is given (ImageBind in the paper: ``image_embedder="module:callable"``);
   otherwise from the VLM's vision tower (or pixel thumbnails), mapped into the text encoder's
   space by a ridge regression fitted on the video's own (frame, caption) pairs
   (:func:`methods.hycovad.refine.fit_alignment`), because a text-only encoder such as
   all-MiniLM-L6-v2 shares no space with a vision tower.
3. **Rules** (§3.3.3, prompts ``P_R`` and ``P_A``): one rule set per caption of ``rule_frames``
   grid frames spread evenly over the video (20 in the paper), then one aggregated set per
   video; an aggregation the parser cannot read falls back to the deterministic union with the
   stricter rule winning (:func:`methods.hycovad.rules.merge_rule_sets`).
4. **Decisions** (§3.3.4, prompt ``P_D``): one request per suspect, parsed into Yes/No and the
   broken rules, which the prediction record keeps as the explanation. An unreadable answer
   counts as a "No" and is counted (``unreadable``).

All requests are greedy (deterministic) and go through the engines in batches of
``batch_size``. The text LLM is any engine (:class:`~harness.engines.base.Engine`): the run's
own VLM with text-only requests, or a separate ``hf``/``vllm``/``openai`` engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.engines.base import Engine, ImagePart, Message, Request, SamplingParams
from methods.hycovad.prompts import (
    Prompts,
    format_aggregate_prompt,
    format_decision_prompt,
    format_rule_prompt,
)
from methods.hycovad.refine import (
    TextEncoder,
    apply_alignment,
    embed_captions,
    fit_alignment,
    refine_captions,
)
from methods.hycovad.rules import RuleSet, merge_rule_sets, parse_decision, parse_rules


@dataclass(frozen=True)
class ValidatorConfig:
    """Settings of the validator (defaults: the paper's; see :class:`HyCoVADSettings`)."""

    rules: bool = True
    refine: bool = True
    refine_window: int = 10
    refine_mode: str = "local"
    chunk_sentences: int = 3
    chunk_overlap: int = 1
    chunk_pool: str = "mean"
    alignment_ridge: float = 1.0
    rule_frames: int = 20
    caption_max_new_tokens: int = 200
    rule_max_new_tokens: int = 512
    aggregate_max_new_tokens: int = 1024
    decision_max_new_tokens: int = 256
    batch_size: int = 8


@dataclass
class Validation:
    """What the validator decided for one video.

    Attributes:
        decisions: ``{grid frame: 0 | 1}`` for every suspect (1 = the LLM said anomaly).
        explanations: one dict per suspect: frame, decision, broken rules, the frame whose
            caption was used, the raw answer.
        rules: the video's aggregated rule set, rendered in ``P_A``'s format ("" without
            rules); ``rules_source``: ``"llm"``, ``"merged"`` (parser fallback) or ``"off"``.
        requests: requests sent per stage (captions, rules, aggregate, decisions).
        unreadable: decisions whose Yes/No could not be read.
    """

    decisions: dict[int, int] = field(default_factory=dict)
    explanations: list[dict[str, Any]] = field(default_factory=list)
    rules: str = ""
    rules_source: str = "off"
    requests: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    refined: int = 0


ImageEmbed = Callable[[np.ndarray], np.ndarray]


def rule_frame_positions(n_grid: int, count: int) -> np.ndarray:
    """Positions (into the scoring grid, 0-based) of ``count`` rule frames spread evenly over
    ``n_grid`` grid frames (``linspace``, unique; all of them when ``n_grid <= count``)."""
    if n_grid <= 0 or count <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_grid <= count:
        return np.arange(n_grid, dtype=np.int64)
    return np.unique(np.linspace(0, n_grid - 1, count).round().astype(np.int64))


def window_positions(pos: int, n_grid: int, window: int) -> range:
    """Grid positions of the local window of grid position ``pos``: ``window`` consecutive
    positions centred on it (``pos - window // 2`` to ``pos + (window - 1) // 2``), clipped
    to the grid."""
    lo = max(0, pos - window // 2)
    hi = min(n_grid - 1, pos + (window - 1) // 2)
    return range(lo, hi + 1)


def _texts(engine: Engine, prompts: Sequence[str], max_new_tokens: int,
           batch_size: int) -> list[str]:
    """Greedy text-only completions of ``prompts`` in order."""
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    out: list[str] = []
    for lo in range(0, len(prompts), batch_size):
        reqs = [Request((Message.user(p),), sampling, request_id=str(lo + i))
                for i, p in enumerate(prompts[lo:lo + batch_size])]
        out.extend(r.completions[0].text for r in engine.generate(reqs))
    return out


def caption_frames(vlm: Engine, frames: np.ndarray, instruction: str, max_new_tokens: int,
                   batch_size: int) -> list[str]:
    """One caption per frame ``(K, H, W, 3)`` uint8 (prompt ``I_G``, greedy)."""
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    out: list[str] = []
    for lo in range(0, len(frames), batch_size):
        reqs = [Request((Message.user(ImagePart(np.asarray(f)), instruction),), sampling,
                        request_id=str(lo + i))
                for i, f in enumerate(frames[lo:lo + batch_size])]
        out.extend(r.completions[0].text.strip() for r in vlm.generate(reqs))
    return out


class Validator:
    """Runs steps 1-4 of the module docstring for one video at a time.

    Args:
        vlm: the captioning engine (images in, text out).
        llm: the rule and decision engine (text only).
        encoder: the text side of the refinement.
        image_embed: frames ``(K, H, W, 3)`` -> ``(K, D)`` visual features.
        joint: whether ``image_embed`` already lives in ``encoder``'s space (a joint embedder:
            no alignment is fitted).
    """

    def __init__(self, cfg: ValidatorConfig, prompts: Prompts, vlm: Engine, llm: Engine,
                 encoder: TextEncoder | None, image_embed: ImageEmbed | None,
                 joint: bool = False) -> None:
        self.cfg, self.prompts = cfg, prompts
        self.vlm, self.llm = vlm, llm
        self.encoder, self.image_embed, self.joint = encoder, image_embed, joint

    def needed_positions(self, n_grid: int, suspects: Sequence[int]) -> np.ndarray:
        """Grid positions whose frames must be captioned (sorted unique)."""
        cfg = self.cfg
        need = set(suspects)
        if cfg.rules:
            need.update(rule_frame_positions(n_grid, cfg.rule_frames).tolist())
        if cfg.refine:
            for p in suspects:
                need.update(window_positions(p, n_grid, cfg.refine_window))
        return np.array(sorted(need), dtype=np.int64)

    def validate(self, grid: np.ndarray, suspects: Sequence[int],
                 frames: dict[int, np.ndarray]) -> Validation:
        """Validate the ``suspects`` (positions into ``grid``, the 0-based frames of the
        scoring grid); ``frames`` maps each of :meth:`needed_positions` to its decoded frame
        ``(H, W, 3)``."""
        cfg, out = self.cfg, Validation()
        positions = self.needed_positions(len(grid), suspects)
        if len(positions) == 0:
            return out
        texts = caption_frames(self.vlm, np.stack([frames[int(p)] for p in positions]),
                               self.prompts.caption, cfg.caption_max_new_tokens, cfg.batch_size)
        captions = {int(p): t for p, t in zip(positions, texts, strict=True)}
        out.requests["captions"] = len(texts)

        chosen = {p: (p, captions[p]) for p in suspects}
        if cfg.refine and self.encoder is not None and suspects:
            chosen = self._refine(positions, captions, frames, list(suspects))
            out.refined = sum(1 for p, (src, _) in chosen.items() if src != p)

        rule_set = RuleSet((), ())
        if cfg.rules:
            rule_set, out.rules_source = self._rules(len(grid), captions, out.requests)
            out.rules = rule_set.render()
        prompts = [format_decision_prompt(chosen[p][1], out.rules, self.prompts)
                   for p in suspects]
        answers = _texts(self.llm, prompts, cfg.decision_max_new_tokens, cfg.batch_size)
        out.requests["decisions"] = len(answers)
        for p, answer in zip(suspects, answers, strict=True):
            d = parse_decision(answer)
            if d.anomaly is None:
                out.unreadable += 1
            out.decisions[p] = int(bool(d.anomaly))
            out.explanations.append({
                "frame": int(grid[p]), "anomaly": d.anomaly, "broken_rules": list(d.broken_rules),
                "caption_frame": int(grid[chosen[p][0]]), "answer": answer})
        return out

    def _refine(self, positions: np.ndarray, captions: dict[int, str],
                frames: dict[int, np.ndarray], suspects: list[int]) -> dict[int, tuple[int, str]]:
        cfg = self.cfg
        assert self.encoder is not None
        keys = [int(p) for p in positions]
        txt = embed_captions({k: captions[k] for k in keys}, self.encoder, cfg.chunk_sentences,
                             cfg.chunk_overlap, cfg.chunk_pool)  # type: ignore[arg-type]
        if self.image_embed is None:
            return {p: (p, captions[p]) for p in suspects}
        feats = np.asarray(self.image_embed(np.stack([frames[k] for k in keys])), np.float64)
        if self.joint:
            feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        else:
            cap = np.stack([txt[k] for k in keys])
            feats = apply_alignment(feats, fit_alignment(feats, cap, cfg.alignment_ridge))
        img = {k: feats[i] for i, k in enumerate(keys)}
        return refine_captions(captions, img, txt, suspects, cfg.refine_window,
                               cfg.refine_mode)  # type: ignore[arg-type]

    def _rules(self, n_grid: int, captions: dict[int, str],
               requests: dict[str, int]) -> tuple[RuleSet, str]:
        cfg = self.cfg
        picks = rule_frame_positions(n_grid, cfg.rule_frames).tolist()
        raw = _texts(self.llm, [format_rule_prompt(captions[p], self.prompts) for p in picks],
                     cfg.rule_max_new_tokens, cfg.batch_size)
        agg = _texts(self.llm, [format_aggregate_prompt(raw, self.prompts)],
                     cfg.aggregate_max_new_tokens, 1)[0]
        requests.update(rules=len(raw), aggregate=1)
        parsed = parse_rules(agg)
        if parsed.normal or parsed.anomaly:
            return parsed, "llm"
        return merge_rule_sets([parse_rules(t) for t in raw]), "merged"
