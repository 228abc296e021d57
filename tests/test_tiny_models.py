"""Tiny in-code models: deterministic builds, standard loadability, tokenizer contract,
model resolution and loading."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch

from harness.models.loader import (
    ModelNotAvailableError,
    load_model,
    pick_device_dtype,
    resolve_model,
)
from harness.models.tiny import TINY_MODELS, build_tiny, write_tiny

QWEN_TINY = ("tiny-qwen2-vl", "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def tiny_dirs() -> dict[str, Path]:
    return {mid: build_tiny(mid) for mid in TINY_MODELS}


def _digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_build_is_byte_identical(tmp_path: Path, tiny_dirs: dict[str, Path]) -> None:
    a = write_tiny("tiny-qwen2-vl", tmp_path / "a")
    b = write_tiny("tiny-qwen2-vl", tmp_path / "b")
    assert _digest(a) == _digest(b)
    assert _digest(a) == _digest(tiny_dirs["tiny-qwen2-vl"])  # the cached build too
    assert "model.safetensors" in _digest(a)


def test_models_differ_between_families(tiny_dirs: dict[str, Path]) -> None:
    digests = {mid: _digest(p)["model.safetensors"] for mid, p in tiny_dirs.items()}
    assert len(set(digests.values())) == len(digests)


@pytest.mark.parametrize("model_id", sorted(TINY_MODELS))
def test_loads_back_the_standard_way(model_id: str, tiny_dirs: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

    path = tiny_dirs[model_id]
    files = (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "chat_template.json",
    )
    for name in files:
        assert (path / name).is_file(), name
    cfg = AutoConfig.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == cfg.architectures[0]
    text = cfg.get_text_config()
    assert text.hidden_size == 64 and text.num_attention_heads == 2
    assert text.hidden_size // text.num_attention_heads >= 32
    assert text.num_hidden_layers == 2
    assert text.vocab_size == len(tok)
    assert text.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id
    assert text.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>") == tok.pad_token_id
    if model_id in QWEN_TINY:
        assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
        assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
        assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
        assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
        vis = cfg.vision_config
        assert (vis.depth, vis.patch_size, vis.spatial_merge_size, vis.temporal_patch_size) == (
            2, 14, 2, 2,
        )  # fmt: skip
        assert vis.num_heads == 2 and 64 // vis.num_heads >= 32
    else:
        assert cfg.image_token_id == tok.convert_tokens_to_ids("<IMG_CONTEXT>")
    prep = json.loads((path / "preprocessor_config.json").read_text())
    assert "image_mean" in prep and "image_std" in prep


@pytest.mark.parametrize("model_id", QWEN_TINY)
def test_tokenizer_contract(model_id: str, tiny_dirs: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dirs[model_id])
    for word in ("yes", "no", " yes", " no", "Yes", "No", " Yes", " No"):
        ids = tok(word, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, (word, ids)
        assert tok.decode(ids) == word
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]  # fmt: skip
    ids = [tok.convert_tokens_to_ids(s) for s in specials]
    assert len(set(ids)) == len(ids) and all(i != tok.unk_token_id for i in ids)
    enc = tok("<|vision_start|><|video_pad|><|vision_end|>hi", add_special_tokens=False)
    assert enc["input_ids"][:3] == ids[3:4] + ids[6:7] + ids[4:5]
    # any byte string round-trips (byte-level BPE)
    text = "Zebra 9876 ünïcødé ✓"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_renders_qwen_chatml(tiny_dirs: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-qwen2-vl"])
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}]
    out = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert out == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    out = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False)
    assert out == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"


def test_tiny_model_outputs_are_not_degenerate(tiny_dirs: dict[str, Path]) -> None:
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    path = tiny_dirs["tiny-qwen2-vl"]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    tops = set()
    with torch.no_grad():
        for prompt in ("Is there an anomaly?", "A man runs in the street at night", "no"):
            ids = tok(prompt, return_tensors="pt")
            lp = model(**ids).logits[0, -1].log_softmax(-1)
            assert lp.max() > -2.5  # peaky, not near-uniform (uniform: -log(2062) = -7.6)
            tops.add(int(lp.argmax()))
    assert len(tops) > 1  # depends on the input


def test_build_tiny_concurrent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAD_EVAL_CACHE", str(tmp_path))
    paths: list[Path] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            paths.append(build_tiny("tiny-qwen2.5-vl"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {str(p) for p in paths} == {str(tmp_path / "models" / "tiny-qwen2.5-vl")}
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert (paths[0] / "model.safetensors").is_file()


def test_resolve_model(tiny_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                       tmp_path: Path) -> None:  # fmt: skip
    default = resolve_model(None)
    assert (default.id, default.family, default.is_tiny) == ("tiny-qwen2-vl", "qwen2_vl", True)
    r25 = resolve_model("tiny-qwen2.5-vl")
    assert r25.family == "qwen2_5_vl" and r25.path == tiny_dirs["tiny-qwen2.5-vl"]
    assert resolve_model("tiny-internvl").family == "internvl"
    # a local directory is tiny iff it holds the tiny marker (fine-tuned copies keep it)
    local = resolve_model(str(tiny_dirs["tiny-qwen2.5-vl"]))
    assert local.family == "qwen2_5_vl" and local.is_tiny
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_bytes((tiny_dirs["tiny-qwen2.5-vl"] / "config.json").read_bytes())
    assert not resolve_model(str(plain)).is_tiny

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotAvailableError, match="not in the local Hugging Face cache"):
        resolve_model("OpenGVLab/InternVL3-8B-hf")
    # a hub id present in the local HF cache resolves to its snapshot, offline
    snap = tmp_path / "hub" / "models--acme--tiny-vl" / "snapshots" / ("0" * 40)
    snap.parent.mkdir(parents=True)
    shutil.copytree(tiny_dirs["tiny-qwen2.5-vl"], snap)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    hub = resolve_model("acme/tiny-vl")
    assert (hub.path, hub.family, hub.is_tiny) == (snap, "qwen2_5_vl", False)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelNotAvailableError, match="supports"):
        resolve_model(str(bad))


def test_load_model_and_describe(tiny_dirs: dict[str, Path]) -> None:
    assert pick_device_dtype("cpu", "auto") == (torch.device("cpu"), torch.float32)
    if not torch.cuda.is_available():
        assert pick_device_dtype("auto", "auto") == (torch.device("cpu"), torch.float32)
    lm = load_model(resolve_model("tiny-qwen2.5-vl"), device="cpu", dtype="bfloat16")
    d = lm.describe()
    assert d["model"] == "tiny-qwen2.5-vl" and d["family"] == "qwen2_5_vl"
    assert d["dtype"] == "bfloat16" and d["device"] == "cpu"
    assert d["parameters"] == sum(p.numel() for p in lm.model.parameters()) > 0
    assert {"transformers", "torch", "path"} <= set(d)
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    assert not any(p.requires_grad for p in lm.model.parameters())
