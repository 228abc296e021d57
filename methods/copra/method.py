"""``copra``, ``copra-static`` and ``copra-noprior``: the frozen baseline's three steps with
instance-conditioned LoRA (COPRA, seed paper 000).

Every window question of :class:`~methods.frozen.FrozenBaseline` runs with a LoRA adapter
generated for its unit (segment, chunk or video: :mod:`methods.copra.units`) from the backbone's
own frozen visual tokens of the unit's conditioning frames; the three steps and every other
setting are the frozen baseline's, so each step's metric is reported as in COPRA's Tables 2, 3,
6 and 7. On language-side tasks (VRU-Accident, HIVAU: the paper's zero-shot transfer) one
adapter is generated from the frames the model is shown and applies to all of the sample's
questions.

* ``copra``: the generator with the global latent prior;
* ``copra-noprior``: without the prior (Table 7's ablation);
* ``copra-static``: one shared LoRA trained with the same GRPO (the paper's "static
  adaptation", Table 3).

Without ``checkpoint`` the network is freshly initialised (seed ``init_seed``): its ``B`` starts
at zero, so an untrained COPRA gives exactly the frozen backbone's outputs. With ``checkpoint``
(``vad-eval train``'s output) the generator settings are the checkpoint's and it must have been
trained for the engine's backbone. Adapters reach the engine as per-request LoRA tensors:
applied functionally by ``hf``, exported once per adapter as PEFT directories by ``vllm``. An
engine without visual tokens (``vllm``) gets a companion ``hf`` model of the same checkpoint for
the conditioning (``conditioner_device``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.engines.base import LoRARef
from harness.video import Frames
from methods.answering import AdapterFn
from methods.base import MethodNeeds, RunContext
from methods.copra.generator import GeneratorConfig
from methods.copra.model import CheckpointError, CopraModel, CopraSpec, checkpoint_digest
from methods.copra.units import GRANULARITIES, Units, plan_units
from methods.frozen import FrozenBaseline, FrozenSettings
from tasks.base import VideoSample
from tasks.windows import WindowGrid, sample_window


@dataclass
class CopraSettings(FrozenSettings):
    """The frozen baseline's settings plus COPRA's.

    Attributes:
        checkpoint: a ``vad-eval train`` output directory (None: untrained).
        granularity: ``"segment"`` | ``"chunk"`` | ``"video"``.
        chunk_seconds: chunk length (30, 60, 120 or 240 s in the paper; 120 is its best).
        condition_frames: conditioning frames of a chunk, a video or a language query.
        rank, width, depth, heads, use_prior, lora_alpha: the generator of an untrained
            COPRA (:class:`~methods.copra.generator.GeneratorConfig`); a checkpoint's own win.
        init_seed: initialisation seed of an untrained network.
        conditioner_device: device of the companion ``hf`` model for engines without visual
            tokens.
        other_backbone: evaluate a checkpoint on a model other than the one it was trained
            for (same adapted modules required), e.g. a local copy under another name.
    """

    checkpoint: str | None = None
    granularity: str = "segment"
    chunk_seconds: float = 120.0
    condition_frames: int = 8
    rank: int = GeneratorConfig.rank
    width: int = GeneratorConfig.width
    depth: int | None = GeneratorConfig.depth
    heads: int = GeneratorConfig.heads
    use_prior: bool = GeneratorConfig.use_prior
    lora_alpha: float | None = GeneratorConfig.lora_alpha
    init_seed: int = 0
    conditioner_device: str = "auto"
    other_backbone: bool = False


class _Adapters:
    """COPRA's :class:`~methods.frozen.WindowAdapters` for one video."""

    def __init__(self, method: CopraMethod, sample: VideoSample, units: Units,
                 batch_size: int) -> None:
        self.method, self.sample, self.units = method, sample, units
        self.batch_size = batch_size
        self.cache: dict[int, LoRARef] = {}
        self.generated = 0

    def extra_indices(self) -> np.ndarray:
        return self.units.extra_indices()

    def refs(self, windows: Sequence[int], frames: Frames, clips: Sequence[np.ndarray]
             ) -> list[LoRARef | None]:
        needed = sorted({int(self.units.window_unit[w]) for w in windows})
        todo = [u for u in needed if u not in self.cache]
        if self.method.settings.granularity == "segment":
            self.cache = {u: r for u, r in self.cache.items() if u in needed}
        for lo in range(0, len(todo), self.batch_size):
            part = todo[lo:lo + self.batch_size]
            conds = []
            for u in part:
                idx = self.units.conditioning[u]
                conds.append(clips[u] if idx is None else frames.take(idx))
            refs = self.method.adapters_for(conds, [f"{self.sample.video_id}:{u}" for u in part])
            self.cache.update(zip(part, refs, strict=True))
            self.generated += len(part)
        return [self.cache[int(self.units.window_unit[w])] for w in windows]

    def describe(self) -> dict[str, Any]:
        s: CopraSettings = self.method.settings
        model = self.method.model()
        return {"granularity": s.granularity,
                "variant": model.spec.variant, "use_prior": model.spec.generator.use_prior,
                "rank": model.spec.generator.rank,
                "generator_parameters": model.parameter_count(),
                "generated_parameters_per_input": model.generated_parameters(),
                "chunk_seconds": s.chunk_seconds if s.granularity == "chunk" else None,
                "units": len(self.units), "adapters_generated": self.generated,
                "window_unit": self.units.window_unit.tolist(),
                "unit_spans": [list(sp) for sp in self.units.spans]}


class CopraMethod(FrozenBaseline):
    name = "copra"
    description = ("COPRA: instance-conditioned LoRA generated per segment/chunk/video for a "
                   "frozen VLM (GRPO-trained; VERA's three steps)")
    needs = MethodNeeds(engine=True, lora=True)
    Settings = CopraSettings
    variant = "copra"
    default_prior = True

    def __init__(self, engine: Any = None, **settings: Any) -> None:
        if "use_prior" not in settings:
            settings["use_prior"] = self.default_prior
        super().__init__(engine, **settings)
        cfg: CopraSettings = self.settings
        if cfg.granularity not in GRANULARITIES:
            raise ValueError(f"{self.name}: granularity must be one of {GRANULARITIES}, not "
                             f"{cfg.granularity!r}")
        if cfg.condition_frames < 1 or cfg.chunk_seconds <= 0:
            raise ValueError(f"{self.name}: condition_frames >= 1 and chunk_seconds > 0")
        self._digest = checkpoint_digest(cfg.checkpoint) if cfg.checkpoint and \
            Path(cfg.checkpoint).is_dir() else None
        if cfg.checkpoint and self._digest is None:
            raise CheckpointError(f"{self.name}: checkpoint {cfg.checkpoint!r} is not a "
                                  "directory")
        self._model: CopraModel | None = None
        self._conditioner: Any = None
        self._tag = uuid.uuid4().hex[:8]
        self._static_ref: LoRARef | None = None

    @classmethod
    def train_routine(cls, job: Any) -> Any:
        """``vad-eval train --method copra|copra-noprior|copra-static`` (see
        :mod:`methods.copra.train`)."""
        from methods.copra.train import train_copra

        return train_copra(job, cls.variant, cls.default_prior)

    # -- binding to the backbone -----------------------------------------------------------
    def conditioner(self) -> Any:
        """The engine giving visual tokens and the adaptable modules: the run's engine when it
        can, else a companion ``hf`` model of the same checkpoint."""
        if self._conditioner is None:
            engine = self.engine
            if engine is not None and engine.capabilities.visual_tokens:
                self._conditioner = engine
            else:
                from harness.engines.hf import HFEngine

                resolved = getattr(engine, "resolved", None)
                if resolved is None:
                    raise CheckpointError(f"{self.name}: the engine has no visual tokens and no "
                                          "local model to load a conditioner from")
                self._conditioner = HFEngine(model=str(resolved.path),
                                             device=self.settings.conditioner_device)
        return self._conditioner

    def model(self) -> CopraModel:
        """The adaptation network, bound to (and checked against) the engine's backbone."""
        if self._model is None:
            cond = self.conditioner()
            targets = cond.lora_targets()
            text_cfg = cond.loaded.model.config.get_text_config()
            dim, layers = int(text_cfg.hidden_size), int(text_cfg.num_hidden_layers)
            backbone = str(getattr(self.engine, "resolved", cond.resolved).id)
            cfg: CopraSettings = self.settings
            if cfg.checkpoint:
                model = CopraModel.load(cfg.checkpoint, device=cond.loaded.device)
                where = f"checkpoint {cfg.checkpoint}"
                model.spec.check_backbone(targets, dim, backbone, where, cfg.other_backbone)
                self._check_variant(model.spec, where)
                self._use_training_prompt(model.spec, where)
            else:
                gen = GeneratorConfig(rank=cfg.rank, width=cfg.width, depth=cfg.depth,
                                      heads=cfg.heads, use_prior=cfg.use_prior,
                                      lora_alpha=cfg.lora_alpha)
                spec = CopraSpec(self.variant, gen, targets, dim, layers, backbone)
                model = CopraModel(spec, seed=cfg.init_seed).to(cond.loaded.device)
            model.eval()
            self._model = model
        return self._model

    def _check_variant(self, spec: CopraSpec, where: str) -> None:
        """A checkpoint is evaluated by the method that trained it."""
        name = "copra-static" if spec.variant == "static" else (
            "copra" if spec.generator.use_prior else "copra-noprior")
        if name != self.name:
            raise CheckpointError(f"{where} holds a {name!r} model; evaluate it with "
                                  f"--method {name}")

    def _use_training_prompt(self, spec: CopraSpec, where: str) -> None:
        """Ask the question the checkpoint was trained with (unless ``prompt_file`` is set);
        refuse a reasoning ("think") checkpoint, which frame scoring cannot read."""
        train = spec.extra.get("train") or {}
        mode = (train.get("config") or {}).get("answer_mode", "constrained")
        if mode != "constrained":
            raise CheckpointError(f"{where}: trained with answer_mode={mode!r}; frame scoring "
                                  "reads P(yes) at the first answer token, so only "
                                  "answer_mode='constrained' checkpoints can be evaluated")
        if self.settings.prompt_file is None and train.get("user_prompt"):
            self.user_prompt = str(train["user_prompt"])

    def adapters_for(self, clips: Sequence[np.ndarray], keys: Sequence[str]) -> list[LoRARef]:
        """One adapter per conditioning clip ``(T, H, W, 3)`` (one generator call). The static
        LoRA ignores its input: it is built once and the same adapter is returned for all."""
        model = self.model()
        if model.spec.variant == "static":
            if self._static_ref is None:
                with torch.no_grad():
                    weights = model([torch.zeros(1, 1, model.spec.visual_dim)])
                self._static_ref = model.refs(weights, [f"{self.name}:{self._tag}:static"])[0]
            return [self._static_ref] * len(clips)
        tokens = self.conditioner().visual_tokens(list(clips))
        with torch.no_grad():
            weights = model(tokens)
        return model.refs(weights, [f"{self.name}:{self._tag}:{k}" for k in keys])

    # -- the frozen baseline's hooks -------------------------------------------------------
    def window_adapters(self, sample: VideoSample, ctx: RunContext, grid: WindowGrid,
                        budget: int) -> _Adapters:
        cfg: CopraSettings = self.settings
        self.model()  # bind first: a checkpoint may bring its training question
        units = plan_units(grid, sample.num_frames, sample.fps, cfg.granularity,
                           cfg.chunk_seconds, cfg.condition_frames)
        return _Adapters(self, sample, units, ctx.batch_size)

    def query_adapter(self, sample: VideoSample, ctx: RunContext) -> AdapterFn:
        n = self.settings.condition_frames
        self.model()

        def adapter(frames: np.ndarray, indices: np.ndarray) -> LoRARef:
            pick = sample_window(0, len(frames), n, "arange")
            return self.adapters_for([frames[pick]], [f"{sample.video_id}:queries"])[0]

        return adapter

    def describe(self) -> dict[str, Any]:
        """Settings plus the checkpoint's content hash (so cached records of one checkpoint
        are never reused for another saved at the same path)."""
        d = super().describe()
        d["checkpoint_sha256"] = self._digest
        return d


class CopraNoPrior(CopraMethod):
    name = "copra-noprior"
    description = "COPRA without the global latent prior (Table 7's ablation)"
    default_prior = False


class CopraStatic(CopraMethod):
    name = "copra-static"
    description = "Static adaptation: one shared LoRA trained with COPRA's GRPO (Table 3)"
    variant = "static"
