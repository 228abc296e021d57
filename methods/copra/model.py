"""COPRA's adaptation network bound to a backbone: visual tokens in, per-input LoRA out, plus the
checkpoint format.

Two networks share one interface (``net(visual (S, V, D), mask (S, V)) -> {target: (A (S, r,
in), B (S, out, r))}``):

* ``variant="copra"``: the :class:`~methods.copra.generator.LoraGenerator` (instance-conditioned,
  with or without the global latent prior);
* ``variant="static"``: :class:`StaticLoRA`, one shared LoRA (the paper's "static adaptation"
  baseline), which ignores the visual input. ``A`` starts as PEFT's default (Kaiming-uniform,
  ``a = sqrt(5)``) and ``B`` at zero, so it too starts as the frozen backbone.

A checkpoint is a directory: ``copra.json`` (format, variant, generator settings, the backbone
it was trained for and its adaptable modules with their shapes, the training configuration and
log) and ``model.safetensors`` (the network's weights). The backbone itself is never saved: it
stays frozen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.engines.base import LoRARef
from harness.models.lora import LoraTarget
from harness.training import CheckpointError
from methods.copra.generator import GeneratorConfig, LoraGenerator

CHECKPOINT_FORMAT = "vad-eval/copra-checkpoint-v1"
META_FILE = "copra.json"
WEIGHTS_FILE = "model.safetensors"
VARIANTS = ("copra", "static")


class StaticLoRA(nn.Module):
    """One LoRA shared by every input: ``A (r, in)``, ``B (out, r)`` per target."""

    def __init__(self, targets: Sequence[LoraTarget], rank: int) -> None:
        super().__init__()
        self.targets = list(targets)
        self.a = nn.ParameterList()
        self.b = nn.ParameterList()
        for t in targets:
            a = torch.empty(rank, t.in_features)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.a.append(nn.Parameter(a))
            self.b.append(nn.Parameter(torch.zeros(t.out_features, rank)))

    def forward(self, visual: torch.Tensor, visual_mask: torch.Tensor | None = None,
                token_types: torch.Tensor | None = None,
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        s = visual.shape[0]
        return {t.name: (a.unsqueeze(0).expand(s, -1, -1), b.unsqueeze(0).expand(s, -1, -1))
                for t, a, b in zip(self.targets, self.a, self.b, strict=True)}


@dataclass
class CopraSpec:
    """Everything needed to rebuild the network for a backbone (saved in ``copra.json``)."""

    variant: str
    generator: GeneratorConfig
    targets: list[LoraTarget]
    visual_dim: int
    backbone_layers: int
    backbone: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"COPRA variant must be one of {VARIANTS}, got {self.variant!r}")

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "variant": self.variant,
                "generator": dataclasses.asdict(self.generator),
                "targets": [dataclasses.asdict(t) for t in self.targets],
                "visual_dim": self.visual_dim, "backbone_layers": self.backbone_layers,
                "backbone": self.backbone, **self.extra}

    @staticmethod
    def from_json(d: dict[str, Any], where: str) -> CopraSpec:
        if d.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{where}: field 'format' is {d.get('format')!r}, expected "
                                  f"{CHECKPOINT_FORMAT!r}")
        try:
            g = dict(d["generator"])
            for k in ("rank", "width", "heads"):
                if not isinstance(g.get(k), int) or isinstance(g.get(k), bool):
                    raise ValueError(f"generator.{k} must be an integer, got {g.get(k)!r}")
            gen = GeneratorConfig(**g)
            targets = [LoraTarget(**t) for t in d["targets"]]
            for t in targets:
                if not (isinstance(t.in_features, int) and isinstance(t.out_features, int)):
                    raise ValueError(f"target {t.name!r}: integer shapes expected")
            known = {"format", "variant", "generator", "targets", "visual_dim",
                     "backbone_layers", "backbone"}
            return CopraSpec(str(d["variant"]), gen, targets, int(d["visual_dim"]),
                             int(d["backbone_layers"]), str(d.get("backbone", "")),
                             {k: v for k, v in d.items() if k not in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: malformed COPRA checkpoint ({exc})") from exc

    def check_backbone(self, targets: Sequence[LoraTarget], visual_dim: int, model: str,
                       where: str, other_backbone: bool = False) -> None:
        """Raise :class:`CheckpointError` unless ``targets`` / ``visual_dim`` are this spec's
        and ``model`` is the backbone it was trained for (``other_backbone``: accept another
        model id with the same modules, e.g. a local copy of the same checkpoint)."""
        if model != self.backbone and not other_backbone:
            raise CheckpointError(f"{where} was trained for backbone {self.backbone!r}, not "
                                  f"{model!r} (method setting other_backbone=true accepts a "
                                  "model with the same modules)")
        if list(targets) != self.targets or visual_dim != self.visual_dim:
            mine = {(t.name, t.in_features, t.out_features) for t in self.targets}
            theirs = {(t.name, t.in_features, t.out_features) for t in targets}
            diff = sorted(mine ^ theirs)
            raise CheckpointError(
                f"{where} was trained for backbone {self.backbone!r} ({len(self.targets)} "
                f"adapted modules, visual dim {self.visual_dim}); model {model!r} has "
                f"{len(targets)} modules, visual dim {visual_dim}"
                + (f" (first difference: {diff[0]})" if diff else ""))


def conditioning_tokens(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T, S, D)`` visual tokens -> ``(T S + (T - 1) S, D)`` tokens and their ``(.,)`` types:
    the appearance tokens in time-major order (type 0), then the motion tokens ``x[t + 1] -
    x[t]`` at the same spatial position (type 1; none when ``T == 1``)."""
    if tokens.dim() != 3:
        raise ValueError(f"visual tokens must be (T, S, D), got {tuple(tokens.shape)}")
    d = tokens.shape[-1]
    app = tokens.reshape(-1, d)
    mot = (tokens[1:] - tokens[:-1]).reshape(-1, d)
    kinds = torch.cat([torch.zeros(len(app), dtype=torch.long),
                       torch.ones(len(mot), dtype=torch.long)]).to(tokens.device)
    return torch.cat([app, mot]), kinds


class CopraModel(nn.Module):
    """The adaptation network of a :class:`CopraSpec` and the glue around it."""

    def __init__(self, spec: CopraSpec, seed: int = 0) -> None:
        super().__init__()
        self.spec = spec
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if spec.variant == "static":
                self.net: nn.Module = StaticLoRA(spec.targets, spec.generator.rank)
            else:
                self.net = LoraGenerator(spec.targets, spec.visual_dim, spec.generator,
                                         spec.backbone_layers)
        #: rows generated so far (one row = one input's adapter); counts generator work
        self.rows_generated = 0

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def generated_parameters(self) -> int:
        """LoRA parameters produced per input: ``sum r * (in + out)`` over targets."""
        r = self.spec.generator.rank
        return sum(r * (t.in_features + t.out_features) for t in self.spec.targets)

    def forward(self, visual: Sequence[torch.Tensor]) -> dict[str, tuple[torch.Tensor,
                                                                         torch.Tensor]]:
        """Adapters for ``S`` inputs given their visual tokens ``[(T_i, S_i, D)]`` (temporal
        groups x tokens per group, :meth:`harness.engines.base.Engine.visual_tokens`) ->
        ``{target: (A (S, r, in), B (S, out, r))}``. Appearance and motion tokens
        (:func:`conditioning_tokens`) are padded and masked here."""
        if not visual:
            raise ValueError("no inputs to generate adapters for")
        dev = self.device
        parts = [conditioning_tokens(v.to(device=dev, dtype=torch.float32)) for v in visual]
        width = max(int(t.shape[0]) for t, _ in parts)
        x = torch.zeros(len(parts), width, self.spec.visual_dim, device=dev)
        mask = torch.zeros(len(parts), width, dtype=torch.bool, device=dev)
        types = torch.zeros(len(parts), width, dtype=torch.long, device=dev)
        for i, (tok, kind) in enumerate(parts):
            x[i, : tok.shape[0]] = tok
            mask[i, : tok.shape[0]] = True
            types[i, : tok.shape[0]] = kind
        self.rows_generated += len(parts)
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = self.net(x, mask, types)
        return out

    def refs(self, weights: dict[str, tuple[torch.Tensor, torch.Tensor]], names: Sequence[str]
             ) -> list[LoRARef]:
        """One engine adapter per row of ``weights`` (detached, pair layout, with the
        ``lora_alpha`` that gives the generator's scale)."""
        alpha = self.spec.generator.scale() * self.spec.generator.rank
        return [LoRARef(name, tensors={**{t: (a[i].detach(), b[i].detach())
                                          for t, (a, b) in weights.items()},
                                       "lora_alpha": alpha})
                for i, name in enumerate(names)]

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, out: Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``out/copra.json`` and ``out/model.safetensors``; returns ``out``."""
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        meta = {**self.spec.to_json(), **(extra or {})}
        (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str),
                                     encoding="utf-8")
        return out

    @staticmethod
    def load(path: Path | str, device: torch.device | str = "cpu") -> CopraModel:
        """Rebuild a saved model (see :meth:`save`)."""
        from safetensors.torch import load_file

        root = Path(path)
        meta_file = root / META_FILE
        if not meta_file.is_file() or not (root / WEIGHTS_FILE).is_file():
            raise CheckpointError(f"{root}: not a COPRA checkpoint (needs {META_FILE} and "
                                  f"{WEIGHTS_FILE})")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{meta_file}: unreadable ({exc})") from exc
        spec = CopraSpec.from_json(meta, str(meta_file))
        try:
            model = CopraModel(spec)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{meta_file}: settings do not build a network ({exc})") from exc
        try:
            state = load_file(str(root / WEIGHTS_FILE))
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # safetensors' own error type, or torch's RuntimeError
            detail = " ".join(str(exc).split())[:600]
            raise CheckpointError(f"{root / WEIGHTS_FILE}: weights unreadable or do not fit the "
                                  f"saved settings ({detail})") from exc
        return model.to(device)


def checkpoint_digest(path: Path | str) -> str:
    """sha256 over a checkpoint's two files (what a run records and its cache keys use)."""
    h = hashlib.sha256()
    for name in (META_FILE, WEIGHTS_FILE):
        h.update(name.encode())
        h.update((Path(path) / name).read_bytes())
    return h.hexdigest()
