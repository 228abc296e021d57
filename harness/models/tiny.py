"""Tiny, randomly initialised vision-language models of the real architectures, built in code.

``tiny-qwen2-vl`` (``Qwen2VLForConditionalGeneration``), ``tiny-qwen2.5-vl``
(``Qwen2_5_VLForConditionalGeneration``) and ``tiny-internvl``
(``InternVLForConditionalGeneration``, Qwen2 text model) exist to check the plumbing (engines,
methods, CLI) on CPU in seconds: their outputs are gibberish, never a benchmark.

``tiny-qwen2-lm`` (:data:`TINY_TEXT_MODELS`) is the language model of ``tiny-qwen2-vl`` alone,
saved as a ``Qwen2ForCausalLM`` checkpoint with the same tokenizer and chat template: the same
weights, so on text-only prompts it gives the same logits as ``tiny-qwen2-vl`` (M-RoPE with equal
position ids in all sections is plain RoPE). It is the tiny model of the ``hf`` engine's
text-only family (``text``) and of the ``vllm`` engine, which can serve text-only
architectures on the CPU build of torch but not the Qwen2-VL ones (their vLLM modules import
torchvision, which has no CPU build for this torch).

Shapes: text hidden 64 = 2 heads x 32 (vLLM's CPU attention needs head size >= 32), 1 KV head,
2 layers, MLP 128; vision depth 2, hidden 64 = 2 heads x 32, patch 14, spatial merge 2,
temporal patch 2 (Qwen). The vocabulary is :mod:`harness.models.tokenizer` (about 2k tokens).

The saved directory is a standard Hugging Face model directory (``config.json``,
``model.safetensors``, ``generation_config.json``, ``tokenizer.json`` + ``tokenizer_config.json``,
``chat_template.jinja``/``chat_template.json``, ``preprocessor_config.json``), loadable with
``AutoConfig``/``AutoTokenizer``/``from_pretrained`` and by vLLM. Builds are deterministic:
the same bytes every time (fixed seed, fixed corpus).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from harness.models.tokenizer import (
    INTERNVL_CHAT_TEMPLATE,
    INTERNVL_TOKENS,
    QWEN_CHAT_TEMPLATE,
    build_tokenizer,
    special_token_ids,
)
from harness.paths import cache_dir

#: tiny model id -> family.
TINY_MODELS: dict[str, str] = {
    "tiny-qwen2-vl": "qwen2_vl",
    "tiny-qwen2.5-vl": "qwen2_5_vl",
    "tiny-internvl": "internvl",
}
#: text-only tiny model id -> (vision-language tiny model whose language model it is).
TINY_TEXT_MODELS: dict[str, str] = {
    "tiny-qwen2-lm": "tiny-qwen2-vl",
}
#: Bump when the recipe changes; a cached build with another version is rebuilt.
RECIPE_VERSION = 2
SEED = 20240601
_STAMP = "vad_eval_tiny.json"

_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]


def _text_kwargs(vocab: int, ids: dict[str, int]) -> dict[str, Any]:
    return dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32768,
        max_window_layers=2,
        rms_norm_eps=1e-6,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )


def tiny_config(model_id: str, tok: Tokenizer) -> Any:
    """The ``PreTrainedConfig`` of a tiny model, consistent with its tokenizer's ids."""
    from transformers import InternVLConfig, Qwen2_5_VLConfig, Qwen2VLConfig

    family = TINY_MODELS[model_id]
    ids = special_token_ids(tok)
    vocab = tok.get_vocab_size()
    text = _text_kwargs(vocab, ids)
    if family == "internvl":
        return InternVLConfig(
            vision_config=dict(
                hidden_size=64, num_attention_heads=2, intermediate_size=128, num_hidden_layers=2,
                image_size=[112, 112], patch_size=[14, 14], use_mean_pooling=True,
            ),
            text_config=dict(model_type="qwen2", rope_theta=1000000.0, **text),
            image_token_id=ids["<IMG_CONTEXT>"],
            image_seq_length=16,  # (112 / 14)^2 * 0.5^2
            downsample_ratio=0.5,
            vision_feature_layer=-1,
            tie_word_embeddings=False,
        )  # fmt: skip
    mm_ids: dict[str, Any] = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    rope = {"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 1000000.0}
    if family == "qwen2_vl":
        vision: dict[str, Any] = dict(
            depth=2, embed_dim=64, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, in_channels=3,
        )  # fmt: skip
        return Qwen2VLConfig(
            text_config=dict(rope_parameters=rope, **text), vision_config=vision, **mm_ids
        )
    vision_25: dict[str, Any] = dict(
        depth=2, hidden_size=64, num_heads=2, intermediate_size=128, out_hidden_size=64,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3,
        window_size=112, fullatt_block_indexes=[1], tokens_per_second=2,
    )  # fmt: skip
    return Qwen2_5_VLConfig(
        text_config=dict(rope_parameters=rope, **text), vision_config=vision_25, **mm_ids
    )


def _make_model(config: Any, seed: int) -> Any:
    """Instantiate with a fixed seed, then re-initialise for non-degenerate outputs.

    The stock init (std 0.02 everywhere) makes every layer's contribution negligible next to the
    residual stream and the next-token distribution near uniform. Instead: weight matrices get
    std ``1/sqrt(fan_in)`` (unit-variance activations, so attention over the prompt and the
    frames matters), embeddings std 1, and the output head std 0.35 (logit std about 3, so the
    distributions are peaky and greedy ties are unlikely). Norms and biases keep their init.
    """
    from transformers import AutoModelForImageTextToText

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p is emb:
                std = 1.0
            elif p is head:
                std = 0.35
            elif p.dim() >= 2:
                std = float(p[0].numel()) ** -0.5
            else:
                continue
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    model.eval()
    return model


def _language_model_of(vlm: Any) -> Any:
    """The text model of a Qwen2-VL-style ``vlm`` as a ``Qwen2ForCausalLM`` with the same
    weights (embeddings, decoder layers, final norm, output head)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text = vlm.config.get_text_config()
    rope = dict(getattr(text, "rope_parameters", None) or {})
    cfg = Qwen2Config(
        vocab_size=text.vocab_size,
        hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size,
        num_hidden_layers=text.num_hidden_layers,
        num_attention_heads=text.num_attention_heads,
        num_key_value_heads=text.num_key_value_heads,
        max_position_embeddings=text.max_position_embeddings,
        max_window_layers=text.max_window_layers,
        rms_norm_eps=text.rms_norm_eps,
        hidden_act=text.hidden_act,
        rope_parameters={"rope_type": "default", "rope_theta": rope.get("rope_theta", 1e6)},
        bos_token_id=text.bos_token_id,
        eos_token_id=text.eos_token_id,
        pad_token_id=text.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lm = Qwen2ForCausalLM(cfg).float()
    src = vlm.model.language_model.state_dict()
    dst = {f"model.{k}": v for k, v in src.items()}
    dst["lm_head.weight"] = vlm.lm_head.weight.detach()
    missing, unexpected = lm.load_state_dict(dst, strict=False)
    missing = [k for k in missing if not k.endswith("rotary_emb.inv_freq")]
    if missing or unexpected:
        raise RuntimeError(f"language-model copy mismatch: {missing} / {unexpected}")
    lm.eval()
    return lm


def _preprocessor_config(family: str) -> dict[str, Any]:
    if family == "internvl":
        return {
            "image_processor_type": "GotOcr2ImageProcessor",
            "processor_class": "InternVLProcessor",
            "do_resize": True, "size": {"height": 112, "width": 112}, "resample": 3,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": _IMAGENET_MEAN, "image_std": _IMAGENET_STD, "do_convert_rgb": True,
            "crop_to_patches": False, "min_patches": 1, "max_patches": 4,
        }  # fmt: skip
    return {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor" if family == "qwen2_vl" else "Qwen2_5_VLProcessor",
        "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280,
        "size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280},
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": _CLIP_MEAN, "image_std": _CLIP_STD,
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "do_convert_rgb": True, "resample": 3,
    }  # fmt: skip


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_tiny(model_id: str, out_dir: Path, seed: int = SEED) -> Path:
    """Build tiny model ``model_id`` into ``out_dir`` (created; must not hold another model)."""
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    if model_id not in TINY_MODELS and model_id not in TINY_TEXT_MODELS:
        raise KeyError(f"unknown tiny model {model_id!r}; known: {_known()}")
    base_id = TINY_TEXT_MODELS.get(model_id, model_id)
    family = TINY_MODELS[base_id]
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(INTERNVL_TOKENS if family == "internvl" else ())
    ids = special_token_ids(tok)
    config = tiny_config(base_id, tok)
    model = _make_model(config, seed + sorted(TINY_MODELS).index(base_id))
    if model_id in TINY_TEXT_MODELS:
        model = _language_model_of(model)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out_dir)
    finally:
        if bars:
            hf_logging.enable_progress_bar()

    template = INTERNVL_CHAT_TEMPLATE if family == "internvl" else QWEN_CHAT_TEMPLATE
    extra: dict[str, Any] = {}
    if family == "internvl":
        extra["extra_special_tokens"] = {
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        }
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=template,
        **extra,
    )
    hf_tok.save_pretrained(out_dir)
    # The generic class name loads with transformers 4.x and 5.x alike (5.x writes its own
    # "TokenizersBackend", which older versions, e.g. a vLLM environment's, do not know).
    tok_cfg_path = out_dir / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    _write_json(tok_cfg_path, tok_cfg)
    _write_json(out_dir / "chat_template.json", {"chat_template": template})
    if model_id not in TINY_TEXT_MODELS:
        _write_json(out_dir / "preprocessor_config.json", _preprocessor_config(family))
    if family == "internvl":
        _write_json(
            out_dir / "processor_config.json",
            {"image_seq_length": 16, "processor_class": "InternVLProcessor"},
        )
    _write_json(out_dir / _STAMP, {"model_id": model_id, "recipe": RECIPE_VERSION, "seed": seed})
    return out_dir


def _known() -> list[str]:
    return sorted([*TINY_MODELS, *TINY_TEXT_MODELS])


def _is_current(path: Path, model_id: str) -> bool:
    try:
        stamp = json.loads((path / _STAMP).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("model_id") == model_id and stamp.get("recipe") == RECIPE_VERSION)


def build_tiny(model_id: str) -> Path:
    """Return ``cache_dir()/models/<model_id>``, building it first if absent or stale.

    ``model_id`` is one of :data:`TINY_MODELS` or :data:`TINY_TEXT_MODELS`. Safe with concurrent
    processes: each builds into its own temporary directory and renames it into place; a loser
    of the race discards its copy (builds are byte-identical anyway).
    """
    if model_id not in TINY_MODELS and model_id not in TINY_TEXT_MODELS:
        raise KeyError(f"unknown tiny model {model_id!r}; known: {_known()}")
    root = cache_dir() / "models"
    target = root / model_id
    if _is_current(target, model_id):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{model_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_tiny(model_id, tmp)
        if target.exists() and not _is_current(target, model_id):  # stale recipe: move aside
            stale = root / f".stale-{model_id}-{uuid.uuid4().hex[:8]}"
            try:
                target.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                pass
        try:
            tmp.rename(target)
        except OSError:
            if not _is_current(target, model_id):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
