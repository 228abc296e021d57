"""``hycovad``: a multi-task self-supervised proposer plus a rule-based LLM validator (seed 002).

Per test video (any frame task; ComplexVAD is the home benchmark):

1. **Scoring grid** (the paper's ComplexVAD protocol, §4.1): every ``score_stride``-th frame
   (10) is scored; each score is carried to the frames up to the next scored one.
2. **Proposer** (§3.1-3.2, :mod:`methods.hycovad.proposer`): objects are detected, their
   crops (and/or whole frames) go through the multi-task network, and a grid frame whose total
   proxy loss (the GradNorm-weighted sum of the task losses, the worst object) exceeds the
   threshold is a suspect (§4.3: 0.3). ``threshold_mode="train_quantile"`` uses the given
   quantile of the training frames' total loss stored in the checkpoint instead, since the
   absolute scale of the losses depends on the network.
3. **Validator** (§3.3, :mod:`methods.hycovad.validator`): captions, refinement, rules and a
   Yes/No decision per suspect.
4. **Exponential Majority Smoothing** (§3.4, :func:`methods.ems.ems_scores`, AnomalyRuler's
   definition) turns the grid's binary decisions into scores. Frames that were not suspects
   enter the smoothing as **normal decisions** (0). Binary decisions tie massively under AUC, so
   by default (``tie_breaker="proposer"``) ``tie_breaker_weight * L / (1 + L)`` (``L``: the
   frame's total proxy loss, a squashing that keeps the scale of the loss comparable across
   videos) is added to every grid score; with the default weight 1e-3 it only orders frames
   whose smoothed scores are (nearly) equal. ``tie_breaker="none"`` keeps EMS alone.

The record keeps ``step_scores``: ``proposer`` (the squashed proxy loss, the SSL-only score of
Table 2) and ``decisions`` (the binary decisions before smoothing), next to ``scores``; and per
video the fraction of grid frames sent to the LLM (``suspect_fraction``; the paper: about half),
the requests per stage, the rules and each suspect's decision with its broken rules.

Ablations (Tables 2-4) are settings: ``backbone`` (``nnformer`` | ``cnn_cvt``), ``proxy_tasks``
(which of ``irregularity, middle, jigsaw, social``) and ``level`` (``object`` | ``frame`` |
``both``) for an untrained proposer or training (a checkpoint brings its own); ``validator``
(False: the proposer alone), ``rules`` (False: Table 3's "No Rule-Based Filtering", the
decision prompt gets an empty rule set), ``refine`` (False: "No Cleaning"), ``flag_memory``
(k > 0: "With Short-Term Memory", an anomaly flag is carried to the next k grid frames),
``caption_max_new_tokens`` and ``refine_window`` (Table 4).

Engines: the run's engine is the captioning VLM (LLaVA-NeXT-Video-7B in the paper). The text
LLM (LLaMA-3.3-70B through Ollama in the paper) is ``llm_engine``: ``"same"`` (the run's
engine, text-only requests), or ``"hf"`` / ``"vllm"`` / ``"openai"`` with ``llm_model`` and
``llm_args`` (engine settings, e.g. ``base_url`` for an OpenAI-compatible server).

``profile``: the generation lengths and rule-frame count are the paper's (``"paper"``); on a
tiny random plumbing model (``"auto"`` picks it when the run's model is one) they are cut to
``TINY_PROFILE`` so a sample run takes seconds; explicit settings always win.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.engines.base import Engine
from harness.training import CheckpointError
from methods.base import Method, MethodNeeds, RunContext
from methods.ems import EMA_ALPHA, ems_scores
from methods.frozen import pixel_features
from methods.hycovad.encoders import BACKBONES
from methods.hycovad.prompts import Prompts, load_prompts
from methods.hycovad.proposer import LEVELS, TASK_NAMES, Proposer, ProposerConfig
from methods.hycovad.refine import make_text_encoder
from methods.hycovad.validator import Validation, Validator, ValidatorConfig
from tasks.base import VideoSample
from tasks.records import encode_rle

PROFILED = ("caption_max_new_tokens", "rule_max_new_tokens", "aggregate_max_new_tokens",
            "decision_max_new_tokens", "rule_frames")
#: the paper's lengths (Table 4: 200-token captions; 20 rule frames, §3.3.3): the validator's
#: defaults
PAPER_PROFILE: dict[str, int] = {k: getattr(ValidatorConfig, k) for k in PROFILED}
TINY_PROFILE: dict[str, int] = {"caption_max_new_tokens": 24, "rule_max_new_tokens": 32,
                                "aggregate_max_new_tokens": 48, "decision_max_new_tokens": 16,
                                "rule_frames": 4}


@dataclass
class HyCoVADSettings:
    """Settings of ``hycovad`` (module docstring). ``None`` lengths follow ``profile``."""

    checkpoint: str | None = None
    # proposer (an untrained one; a checkpoint brings its own)
    backbone: str = "nnformer"
    proxy_tasks: str = ",".join(TASK_NAMES)
    level: str = "object"
    init_seed: int = 0
    proposer_device: str = "auto"
    target_chunk: int = 64
    # protocol and suspects
    score_stride: int = 10
    threshold: float = 0.3
    threshold_mode: str = "auto"
    threshold_quantile: float = 0.5
    # validator
    validator: bool = True
    rules: bool = ValidatorConfig.rules
    refine: bool = ValidatorConfig.refine
    refine_window: int = ValidatorConfig.refine_window
    refine_mode: str = ValidatorConfig.refine_mode
    chunk_sentences: int = ValidatorConfig.chunk_sentences
    chunk_overlap: int = ValidatorConfig.chunk_overlap
    chunk_pool: str = ValidatorConfig.chunk_pool
    text_encoder: str = "minilm"
    image_embedder: str = "vlm"
    alignment_ridge: float = ValidatorConfig.alignment_ridge
    rule_frames: int | None = None
    caption_max_new_tokens: int | None = None
    rule_max_new_tokens: int | None = None
    aggregate_max_new_tokens: int | None = None
    decision_max_new_tokens: int | None = None
    max_pixels: int | None = 448 * 448
    prompts_dir: str | None = None
    prompt_file: str | None = None
    llm_engine: str = "same"
    llm_model: str | None = None
    llm_args: dict[str, Any] | None = None
    profile: str = "auto"
    # smoothing
    flag_memory: int = 0
    ems_alpha: float = EMA_ALPHA
    ems_window: int = 1
    tie_breaker: str = "proposer"
    tie_breaker_weight: float = 1e-3


def carry(grid: np.ndarray, values: np.ndarray, num_frames: int) -> np.ndarray:
    """Grid values ``(G,)`` at sorted 0-based frames ``grid`` (``grid[0] == 0``) -> per-frame
    ``(num_frames,)``: each frame takes the value of the last grid frame at or before it."""
    pos = np.searchsorted(grid, np.arange(num_frames), side="right") - 1
    return np.asarray(values, dtype=np.float64)[np.maximum(pos, 0)]


def carry_flags(decisions: np.ndarray, k: int) -> np.ndarray:
    """Table 3's short-term memory: each 1 of ``decisions`` ``(G,)`` also flags the next ``k``
    grid positions (flags set this way do not propagate further)."""
    d = np.asarray(decisions, dtype=np.int64)
    out = d.copy()
    for i in np.flatnonzero(d):
        out[i + 1:i + 1 + k] = 1
    return out


def squash(loss: np.ndarray) -> np.ndarray:
    """``L / (1 + L)`` for non-negative losses: monotone, in ``[0, 1)``."""
    x = np.maximum(np.asarray(loss, dtype=np.float64), 0.0)
    return x / (1.0 + x)


class HyCoVADMethod(Method):
    name = "hycovad"
    description = ("HyCoVAD: multi-task SSL proposer (nnFormer) + rule-based LLM validator, "
                   "EMS smoothing (ComplexVAD protocol: every 10th frame)")
    task_kinds = frozenset({"frame"})
    needs = MethodNeeds(engine=True)
    Settings = HyCoVADSettings
    trained = False  # the proposer is random without a checkpoint (a checkpoint run counts)

    def __init__(self, engine: Engine | None = None, **settings: Any) -> None:
        super().__init__(engine, **settings)
        s: HyCoVADSettings = self.settings
        checks = {
            "score_stride": s.score_stride >= 1, "refine_window": s.refine_window >= 1,
            "threshold_mode": s.threshold_mode in ("auto", "absolute", "train_quantile"),
            "threshold_quantile": 0.0 <= s.threshold_quantile <= 1.0,
            "refine_mode": s.refine_mode in ("local", "global"),
            "tie_breaker": s.tie_breaker in ("proposer", "none"),
            "profile": s.profile in ("auto", "paper", "tiny"),
            "flag_memory": s.flag_memory >= 0,
            "level": s.level in LEVELS,
            "backbone": s.backbone in BACKBONES,
            "proxy_tasks": bool(self._tasks()) and set(self._tasks()) <= set(TASK_NAMES),
            "llm_engine": s.llm_engine in ("same", "hf", "vllm", "openai"),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"hycovad: bad setting(s) {bad}: "
                             + ", ".join(f"{k}={getattr(s, k)!r}" for k in bad))
        self._digest = None
        if s.checkpoint:
            if not Path(s.checkpoint).is_dir():
                raise CheckpointError(f"hycovad: checkpoint {s.checkpoint!r} is not a directory")
            h = hashlib.sha256()
            for p in sorted(Path(s.checkpoint).glob("*")):
                if p.is_file() and p.name != "train_log.jsonl":
                    h.update(p.name.encode())
                    h.update(p.read_bytes())
            self._digest = h.hexdigest()
        self._proposer: Proposer | None = None
        self._validator: Validator | None = None
        self._llm: Engine | None = None
        self.lengths = self._lengths()

    # -- settings ----------------------------------------------------------------------------
    def _tasks(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.settings.proxy_tasks.split(",") if t.strip())

    def _is_tiny(self) -> bool:
        resolved = getattr(self.engine, "resolved", None) if self.engine is not None else None
        return bool(getattr(resolved, "is_tiny", False))

    def _lengths(self) -> dict[str, int]:
        s: HyCoVADSettings = self.settings
        profile = s.profile if s.profile != "auto" else ("tiny" if self._is_tiny() else "paper")
        base = TINY_PROFILE if profile == "tiny" else PAPER_PROFILE
        out = {k: (getattr(s, k) if getattr(s, k) is not None else v) for k, v in base.items()}
        out["profile"] = 1 if profile == "tiny" else 0
        return out

    def deterministic(self, sample: VideoSample) -> bool:
        """Every request is greedy and the proposer is a fixed network."""
        return True

    @classmethod
    def train_routine(cls, job: Any) -> Any:
        """``vad-eval train --method hycovad`` (:mod:`methods.hycovad.train`): the proposer
        on the task's normal training videos (the validator is training-free)."""
        from methods.hycovad.train import train_hycovad

        return train_hycovad(job)

    # -- components --------------------------------------------------------------------------
    def proposer(self) -> Proposer:
        if self._proposer is None:
            s: HyCoVADSettings = self.settings
            device = s.proposer_device
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            if s.checkpoint:
                self._proposer = Proposer.load(s.checkpoint, device=device)
            else:
                cfg = ProposerConfig(backbone=s.backbone, tasks=self._tasks(), level=s.level)
                self._proposer = Proposer.untrained(cfg, seed=s.init_seed, device=device)
        return self._proposer

    def threshold(self) -> float:
        """The suspect threshold (module docstring): ``absolute`` -> ``threshold``;
        ``train_quantile`` -> the ``threshold_quantile`` of the checkpoint's training-frame total
        losses (interpolated between the stored quantiles); ``auto`` -> ``train_quantile`` when
        the proposer carries that distribution, else ``absolute``."""
        s: HyCoVADSettings = self.settings
        calib = self.proposer().calibration or {}
        values = calib.get("total_quantiles")
        mode = s.threshold_mode
        if mode == "auto":
            mode = "train_quantile" if values else "absolute"
        if mode == "absolute":
            return float(s.threshold)
        if not values:
            raise CheckpointError("hycovad: threshold_mode='train_quantile' needs a checkpoint "
                                  "with the training loss distribution")
        qs = sorted((float(q), float(v)) for q, v in values.items())
        return float(np.interp(s.threshold_quantile, [q for q, _ in qs], [v for _, v in qs]))

    def llm(self) -> Engine:
        if self._llm is None:
            s: HyCoVADSettings = self.settings
            if s.llm_engine == "same":
                assert self.engine is not None
                self._llm = self.engine
            else:
                from harness.cache import wrap_engine
                from harness.engines import catalog  # noqa: F401  (registers the engines)
                from harness.registry import ENGINES

                cls = ENGINES.get(s.llm_engine)
                try:
                    engine = cls(model=s.llm_model, **(s.llm_args or {}))  # type: ignore[operator]
                except TypeError as exc:
                    raise ValueError(f"hycovad: bad llm_args for engine {s.llm_engine!r}: "
                                     f"{exc}") from exc
                self._llm = wrap_engine(engine, enabled=True)
        return self._llm

    def validator(self, ctx: RunContext) -> Validator:
        if self._validator is None:
            s: HyCoVADSettings = self.settings
            assert self.engine is not None
            prompts: Prompts = load_prompts(s.prompts_dir, decision_file=s.prompt_file)
            cfg = ValidatorConfig(
                rules=s.rules, refine=s.refine, refine_window=s.refine_window,
                refine_mode=s.refine_mode, chunk_sentences=s.chunk_sentences,
                chunk_overlap=s.chunk_overlap, chunk_pool=s.chunk_pool,
                alignment_ridge=s.alignment_ridge, batch_size=ctx.batch_size,
                **{k: v for k, v in self.lengths.items() if k in PROFILED})
            encoder, embed, joint = None, None, False
            if s.refine:
                encoder, embed, joint = self._embedders()
            self._validator = Validator(cfg, prompts, self.engine, self.llm(), encoder, embed,
                                        joint)
        return self._validator

    def _embedders(self) -> tuple[Any, Any, bool]:
        s: HyCoVADSettings = self.settings
        engine = self.engine
        assert engine is not None
        if s.image_embedder not in ("vlm", "pixels"):  # a joint embedder "module:callable"
            import importlib

            mod, _, attr = s.image_embedder.partition(":")
            if not attr:
                raise ValueError("hycovad: image_embedder is 'vlm', 'pixels' or "
                                 f"'module:callable', not {s.image_embedder!r}")
            joint = getattr(importlib.import_module(mod), attr)()
            return joint, joint.embed_images, True
        encoder = make_text_encoder(s.text_encoder)
        if s.image_embedder == "vlm" and engine.capabilities.embeddings:
            return encoder, lambda frames: engine.embed_frames([f[None] for f in frames]), False
        return encoder, lambda frames: pixel_features([f[None] for f in frames]), False

    # -- one video ---------------------------------------------------------------------------
    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        s: HyCoVADSettings = self.settings
        n = sample.num_frames
        if n <= 0:
            _, n = ctx.frame_range(sample)
        grid = np.arange(0, n, s.score_stride, dtype=np.int64)
        prop = self.proposer()
        total = np.zeros(len(grid))
        per_task: dict[str, np.ndarray] = {}
        objects = np.zeros(len(grid), dtype=np.int64)
        for lo in range(0, len(grid), s.target_chunk):
            targets = grid[lo:lo + s.target_chunk]
            frames = ctx.read(sample, prop.context_indices(targets, n),
                              max_pixels=prop.config.max_pixels)
            res = prop.score(frames, targets, n)
            total[lo:lo + len(targets)] = res.total
            objects[lo:lo + len(targets)] = res.objects
            for k, v in res.per_task.items():
                per_task.setdefault(k, np.zeros(len(grid)))[lo:lo + len(targets)] = v
        thr = self.threshold()
        suspects = [int(i) for i in np.flatnonzero(total > thr)]

        val = Validation()
        decisions = np.zeros(len(grid), dtype=np.int64)
        if s.validator:
            validator = self.validator(ctx)
            need = validator.needed_positions(len(grid), suspects)
            decoded = ctx.read(sample, grid[need], max_pixels=s.max_pixels) if len(need) else None
            frames_by_pos = ({int(p): decoded.take([int(grid[p])])[0] for p in need}
                             if decoded is not None else {})
            val = validator.validate(grid, suspects, frames_by_pos)
            for p, d in val.decisions.items():
                decisions[p] = d
            decisions = carry_flags(decisions, s.flag_memory)
            grid_scores = ems_scores(decisions, s.ems_alpha, s.ems_window)
            if s.tie_breaker == "proposer":
                grid_scores = grid_scores + s.tie_breaker_weight * squash(total)
        else:
            grid_scores = squash(total)
        return {
            "video_id": sample.video_id,
            "num_frames": n,
            "scores": carry(grid, grid_scores, n).tolist(),
            "step_scores": {"proposer": encode_rle(carry(grid, squash(total), n)),
                            **({"decisions": encode_rle(carry(grid, decisions, n))}
                               if s.validator else {})},
            "grid": {"stride": s.score_stride, "frames": len(grid),
                     "total_loss": total.tolist(),
                     "per_task": {k: v.tolist() for k, v in per_task.items()},
                     "objects": objects.tolist()},
            "threshold": thr,
            "suspects": len(suspects),
            "suspect_fraction": len(suspects) / max(1, len(grid)),
            "llm_requests": val.requests,
            "validation": {"rules": val.rules, "rules_source": val.rules_source,
                           "unreadable": val.unreadable, "refined": val.refined,
                           "decisions": val.explanations},
        }

    @classmethod
    def summarize(cls, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Over the run: grid frames scored, suspects and their fraction (the share of grid
        frames sent to the LLM for a decision; the paper: about half), requests per stage,
        unreadable decisions, decisions that said anomaly, and how the rule sets were made."""
        grid = sum(int(r.get("grid", {}).get("frames", 0)) for r in records)
        suspects = sum(int(r.get("suspects", 0)) for r in records)
        requests: dict[str, int] = {}
        sources: dict[str, int] = {}
        yes = unreadable = 0
        for r in records:
            for k, v in (r.get("llm_requests") or {}).items():
                requests[k] = requests.get(k, 0) + int(v)
            val = r.get("validation") or {}
            src = val.get("rules_source", "off")
            sources[src] = sources.get(src, 0) + 1
            unreadable += int(val.get("unreadable", 0))
            yes += sum(1 for d in val.get("decisions", []) if d.get("anomaly") is True)
        return {"grid_frames": grid, "suspects": suspects,
                "suspect_fraction": suspects / grid if grid else 0.0,
                "llm_decisions_yes": yes, "llm_decisions_unreadable": unreadable,
                **{f"requests_{k}": v for k, v in sorted(requests.items())},
                "rules_source": sources}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["checkpoint_sha256"] = self._digest
        d["lengths"] = dict(self.lengths)
        return d
