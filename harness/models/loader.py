"""Resolve a model name to a local directory and load it (offline only).

A model is named by a tiny id (``tiny-qwen2-vl``, ``tiny-qwen2.5-vl``, ``tiny-internvl``,
``tiny-qwen2-lm``: built on demand by :mod:`harness.models.tiny`), a local directory, or a
Hugging Face hub id that must already be in the local Hugging Face cache: nothing is ever
downloaded. The family comes from ``config.json``'s ``model_type``:

* ``qwen2_vl`` (``Qwen2VLForConditionalGeneration``), ``qwen2_5_vl``
  (``Qwen2_5_VLForConditionalGeneration``) and ``internvl`` (the transformers-native
  ``InternVLForConditionalGeneration``, i.e. the ``-hf`` checkpoints such as
  ``OpenGVLab/InternVL3-8B-hf``): vision-language, loaded with ``AutoModelForImageTextToText``;
* ``text``: text-only causal LMs (:data:`TEXT_MODEL_TYPES`: Qwen2/2.5 and Qwen3 with their
  MoE variants, Llama 2/3, Mistral, Mixtral, Phi-3, Gemma 2, Gemma 3 text), loaded with
  ``AutoModelForCausalLM``; ``tiny-qwen2-lm`` is one (a ``Qwen2ForCausalLM``).

Attention is ``sdpa``, except Gemma 2 (``eager``: its attention logit soft-capping has no sdpa
kernel). The chat template is the tokenizer's, else the directory's ``chat_template.jinja`` /
``chat_template.json``, else a built-in one (:func:`_chat_template`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from harness.engines.base import EngineError
from harness.models.tiny import TINY_MODELS, TINY_TEXT_MODELS, build_tiny

Family = Literal["qwen2_vl", "qwen2_5_vl", "internvl", "text"]
DEFAULT_MODEL = "tiny-qwen2-vl"

#: ``model_type`` values of the text-only causal LMs served as family ``"text"``.
TEXT_MODEL_TYPES = frozenset({
    "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "llama", "mistral", "mixtral", "phi3",
    "gemma2", "gemma3_text",
})  # fmt: skip
_FAMILY_OF_TYPE: dict[str, Family] = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "internvl": "internvl",
    **{t: "text" for t in TEXT_MODEL_TYPES},
}
#: attention implementation per ``model_type`` where ``sdpa`` is not supported
_ATTENTION = {"gemma2": "eager"}
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


def _model_type(path: Path, name: str) -> str:
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelNotAvailableError(f"model {name!r}: no config.json in {path}")
    return str(json.loads(cfg_file.read_text()).get("model_type", ""))


def _family_of(path: Path, name: str) -> Family:
    model_type = _model_type(path, name)
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
    """Name -> :class:`ResolvedModel`. ``None`` means :data:`DEFAULT_MODEL` (tiny Qwen2-VL);
    ``tiny-qwen2-lm`` resolves like the other tiny ids (family ``"text"``, ``is_tiny``).

    Raises:
        ModelNotAvailableError: unknown family, or a hub id absent from the local cache.
    """
    name = id_or_path or DEFAULT_MODEL
    if name in TINY_MODELS or name in TINY_TEXT_MODELS:
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
    """The model's chat template: the tokenizer's, else the directory's
    ``chat_template.jinja`` / ``chat_template.json``, else a built-in one: InternVL's for
    ``internvl``, Qwen's ChatML for the Qwen families, plain ChatML
    (:data:`~harness.models.tokenizer.CHATML_CHAT_TEMPLATE`: no default system prompt, the
    tokenizer's BOS token first when it has one) for ``text``."""
    from harness.models.tokenizer import (
        CHATML_CHAT_TEMPLATE,
        INTERNVL_CHAT_TEMPLATE,
        QWEN_CHAT_TEMPLATE,
    )

    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.chat_template)
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text()
    if (path / "chat_template.json").is_file():
        tpl = json.loads((path / "chat_template.json").read_text()).get("chat_template")
        if tpl:
            return str(tpl)
    if family == "text":
        return CHATML_CHAT_TEMPLATE
    return INTERNVL_CHAT_TEMPLATE if family == "internvl" else QWEN_CHAT_TEMPLATE


def load_tokenizer(path: Path, trust_remote_code: bool = False) -> Any:
    """The tokenizer of the model directory ``path`` (offline).

    A directory whose ``tokenizer_config.json`` names the generic fast class
    (``PreTrainedTokenizerFast`` / ``TokenizersBackend``, e.g. the tiny models, Llama 3) gets
    exactly its ``tokenizer.json``: transformers 5's ``AutoTokenizer`` otherwise substitutes
    the class of the ``model_type`` (``Qwen2Tokenizer`` for ``qwen2``), whose own pre-tokenizer
    can split text differently. Same rule as the ``vllm`` engine's tokenizer.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok_cfg = path / "tokenizer_config.json"
    declared = json.loads(tok_cfg.read_text()).get("tokenizer_class") if tok_cfg.is_file() else None
    if declared in ("PreTrainedTokenizerFast", "TokenizersBackend") \
            and (path / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
    return AutoTokenizer.from_pretrained(
        path, trust_remote_code=trust_remote_code, local_files_only=True
    )


def load_model(
    resolved: ResolvedModel,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load weights + tokenizer from ``resolved.path`` (never from the network).

    Vision-language families load with ``AutoModelForImageTextToText``, ``text`` with
    ``AutoModelForCausalLM``; the tokenizer with :func:`load_tokenizer`.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    dev, torch_dtype = pick_device_dtype(device, dtype)
    kwargs: dict[str, Any] = dict(
        dtype=torch_dtype, trust_remote_code=trust_remote_code, local_files_only=True
    )
    auto: Any = AutoModelForCausalLM if resolved.family == "text" else AutoModelForImageTextToText
    attention = _ATTENTION.get(_model_type(resolved.path, resolved.id), "sdpa")
    model: Any
    try:
        model = auto.from_pretrained(resolved.path, attn_implementation=attention, **kwargs)
        tokenizer = load_tokenizer(resolved.path, trust_remote_code)
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
