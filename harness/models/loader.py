"""Resolve a model name to a local directory and load it (offline only).

A model is named by a tiny id (``tiny-qwen2-vl``, ``tiny-qwen2.5-vl``, ``tiny-internvl``: built on
demand by :mod:`harness.models.tiny`), a local directory, or a Hugging Face hub id that must
already be in the local Hugging Face cache: nothing is ever downloaded. Supported families:
``qwen2_vl`` (``Qwen2VLForConditionalGeneration``), ``qwen2_5_vl``
(``Qwen2_5_VLForConditionalGeneration``) and ``internvl`` (the transformers-native
``InternVLForConditionalGeneration``, i.e. the ``-hf`` checkpoints such as
``OpenGVLab/InternVL3-8B-hf``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from harness.engines.base import EngineError
from harness.models.tiny import TINY_MODELS, build_tiny

Family = Literal["qwen2_vl", "qwen2_5_vl", "internvl"]
DEFAULT_MODEL = "tiny-qwen2-vl"

_FAMILY_OF_TYPE: dict[str, Family] = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "internvl": "internvl",
}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotAvailableError(EngineError):
    """The model cannot be found locally or is of an unsupported family."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model lives and what it is. ``is_tiny``: a random tiny model (plumbing only)."""

    id: str
    path: Path
    family: Family
    is_tiny: bool = False


def _family_of(path: Path, name: str) -> Family:
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelNotAvailableError(f"model {name!r}: no config.json in {path}")
    model_type = json.loads(cfg_file.read_text()).get("model_type", "")
    if model_type in _FAMILY_OF_TYPE:
        return _FAMILY_OF_TYPE[model_type]
    hint = ""
    if model_type == "internvl_chat":
        hint = (
            " This is the remote-code InternVL checkpoint; use its transformers-native '-hf' "
            "variant (e.g. OpenGVLab/InternVL3-8B-hf)."
        )
    raise ModelNotAvailableError(
        f"model {name!r} has model_type {model_type!r}; the hf engine supports "
        f"{sorted(_FAMILY_OF_TYPE)}.{hint}"
    )


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    # read at call time (huggingface_hub reads these once, at import)
    cache = os.environ.get("HF_HUB_CACHE") or (
        str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None
    )
    try:
        return Path(snapshot_download(repo_id=repo_id, cache_dir=cache, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, OSError) as exc:
        raise ModelNotAvailableError(
            f"model {repo_id!r} is not in the local Hugging Face cache and this harness never "
            f"downloads. On a machine with network access run `hf download {repo_id}` (or "
            f"`huggingface-cli download {repo_id}`), then copy the cache (HF_HOME / "
            f"HF_HUB_CACHE) here, or pass the model's local directory as the model path. "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def resolve_model(id_or_path: str | None) -> ResolvedModel:
    """Name -> :class:`ResolvedModel`. ``None`` means :data:`DEFAULT_MODEL` (tiny Qwen2-VL).

    Raises:
        ModelNotAvailableError: unknown family, or a hub id absent from the local cache.
    """
    name = id_or_path or DEFAULT_MODEL
    if name in TINY_MODELS:
        path = build_tiny(name)
        return ResolvedModel(name, path, _family_of(path, name), is_tiny=True)
    local = Path(name).expanduser()
    if local.is_dir():
        return ResolvedModel(name, local.resolve(), _family_of(local, name),
                             is_tiny=(local / "vad_eval_tiny.json").is_file())
    if local.exists() or name.startswith((".", "/", "~")):
        raise ModelNotAvailableError(f"model path {name!r} is not a model directory")
    path = _hub_snapshot(name)
    return ResolvedModel(name, path, _family_of(path, name))


def pick_device_dtype(
    device: str = "auto", dtype: str = "auto"
) -> tuple[torch.device, torch.dtype]:
    """``auto`` -> CUDA + bfloat16 when CUDA is available, else CPU + float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' requested but CUDA is not available")
    if dtype == "auto":
        return dev, torch.bfloat16 if dev.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise EngineError(f"unknown dtype {dtype!r}; use auto, {', '.join(_DTYPES)}")
    return dev, _DTYPES[dtype]


@dataclass
class LoadedModel:
    """A loaded model with its tokenizer, ready for inference (``eval()``, on ``device``)."""

    resolved: ResolvedModel
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    chat_template: str
    extras: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What was loaded: id, path, family, dtype, device, parameter count, versions."""
        import transformers

        return {
            "model": self.resolved.id,
            "path": str(self.resolved.path),
            "family": self.resolved.family,
            "is_tiny": self.resolved.is_tiny,
            "model_class": type(self.model).__name__,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }


def _chat_template(tokenizer: Any, path: Path, family: Family) -> str:
    """The model's chat template: tokenizer's, else the directory's, else a built-in one."""
    from harness.models.tokenizer import INTERNVL_CHAT_TEMPLATE, QWEN_CHAT_TEMPLATE

    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.chat_template)
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text()
    if (path / "chat_template.json").is_file():
        tpl = json.loads((path / "chat_template.json").read_text()).get("chat_template")
        if tpl:
            return str(tpl)
    return INTERNVL_CHAT_TEMPLATE if family == "internvl" else QWEN_CHAT_TEMPLATE


def load_model(
    resolved: ResolvedModel,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load weights + tokenizer from ``resolved.path`` (never from the network)."""
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    dev, torch_dtype = pick_device_dtype(device, dtype)
    kwargs: dict[str, Any] = dict(
        dtype=torch_dtype, trust_remote_code=trust_remote_code, local_files_only=True
    )
    model: Any
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            resolved.path, attn_implementation="sdpa", **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(
            resolved.path, trust_remote_code=trust_remote_code, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"cannot load model {resolved.id!r}: {exc}") from exc
    model = model.to(dev).eval()
    model.requires_grad_(False)
    extras: dict[str, Any] = {}
    if resolved.family == "internvl":
        from transformers import GotOcr2ImageProcessorPil

        extras["image_processor"] = GotOcr2ImageProcessorPil.from_pretrained(resolved.path)
        extras["image_seq_length"] = int(model.config.image_seq_length)
    return LoadedModel(
        resolved=resolved,
        model=model,
        tokenizer=tokenizer,
        device=dev,
        dtype=torch_dtype,
        chat_template=_chat_template(tokenizer, resolved.path, resolved.family),
        extras=extras,
    )
