"""Per-request LoRA adapters of the ``hf`` engine: parsing ``LoRARef`` into weights for
:class:`harness.models.lora.PerSampleLoRA` (see the ``hf`` engine's docstring for the rules)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from harness.engines.base import EngineError, LoRARef
from harness.engines.lora_export import normalize_tensors
from harness.models.lora import DEFAULT_KINDS, LoraTarget

log = logging.getLogger(__name__)

#: a parsed adapter: ({target module name: (A (r, in), B (out, r))}, scale alpha / r)
Adapter = tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], float]


def read_peft_dir(path: Path, name: str) -> tuple[dict[str, Any], float | None]:
    """A PEFT LoRA directory's tensors and ``lora_alpha``."""
    from safetensors.torch import load_file

    cfg_file, weights = path / "adapter_config.json", path / "adapter_model.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise EngineError(f"LoRA {name!r}: {path} lacks adapter_config.json or "
                          "adapter_model.safetensors")
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        tensors = dict(load_file(str(weights)))
    except Exception as exc:  # JSON or safetensors errors
        raise EngineError(f"LoRA {name!r}: {path}: unreadable adapter ({exc})") from exc
    if not isinstance(cfg, dict):
        raise EngineError(f"LoRA {name!r}: {cfg_file}: expected a JSON object")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern") or cfg.get("use_dora") \
            or cfg.get("use_rslora"):
        raise EngineError(f"LoRA {name!r}: {cfg_file}: rank/alpha patterns, rsLoRA and DoRA "
                          "are not supported")
    ranks = {int(v.shape[0]) for k, v in tensors.items() if ".lora_A" in k}
    if "r" in cfg and ranks and int(cfg["r"]) != max(ranks):
        raise EngineError(f"LoRA {name!r}: {cfg_file}: field 'r' is {cfg['r']} but the "
                          f"tensors have rank {max(ranks)}")
    alpha = cfg.get("lora_alpha")
    return tensors, (float(alpha) if alpha is not None else None)


def parse_adapter(ref: LoRARef, targets: list[LoraTarget], model_id: str) -> Adapter:
    """``ref`` parsed for a model whose adaptable modules are ``targets`` into
    ``({target name: (A (r, in), B (out, r))}, scale alpha / r)``."""
    tensors: dict[str, Any]
    alpha: float | None = None
    if ref.tensors is not None:
        tensors = dict(ref.tensors)
    elif ref.path is not None:
        tensors, alpha = read_peft_dir(Path(ref.path), ref.name)
    else:
        raise EngineError(f"LoRA {ref.name!r} has neither a path nor tensors")
    try:
        pairs, alpha_t, dropped = normalize_tensors(tensors, modules=DEFAULT_KINDS)
    except ValueError as exc:
        raise EngineError(f"LoRA {ref.name!r}: {exc}") from exc
    if dropped:
        log.warning("LoRA %r: %d module(s) outside the language model's projections "
                    "ignored, e.g. %s", ref.name, len(dropped), dropped[0])
    alpha = alpha_t if alpha_t is not None else alpha
    by_name = {t.name: t for t in targets}
    by_suffix = {t.name[t.name.rindex("layers."):]: t.name for t in targets}
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for module, ab in pairs.items():
        name = module if module in by_name else by_suffix.get(
            module[module.rindex("layers."):] if "layers." in module else module)
        if name is None:
            raise EngineError(f"LoRA {ref.name!r}: module {module!r} is not an adaptable "
                              f"module of {model_id} (e.g. {targets[0].name!r})")
        a, b = ab
        t = by_name[name]
        if a.shape[1] != t.in_features or b.shape[0] != t.out_features:
            raise EngineError(f"LoRA {ref.name!r}: {module}: A {tuple(a.shape)} / B "
                              f"{tuple(b.shape)} do not fit (r, {t.in_features}) / "
                              f"({t.out_features}, r)")
        out[name] = ab
    if not out:
        raise EngineError(f"LoRA {ref.name!r} adapts no language-model module")
    rank = max(a.shape[0] for a, _ in out.values())
    return out, (alpha / rank if alpha is not None else 1.0)
