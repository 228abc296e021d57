"""The ``hf`` engine on text-only causal LMs (family ``text``).

References are independent of the harness's decoding code: a plain transformers
``AutoModelForCausalLM`` (eager attention, no KV cache, no padding) run greedily on prompt ids
built with the tokenizer's own ``apply_chat_template``. Models: ``tiny-qwen2-lm`` (built by
:mod:`harness.models.tiny`) and tiny random checkpoints of other text architectures written
here with the same tokenizer (Llama, Qwen3, Mistral, Phi-3 with fused projections, Gemma 2
with eager attention, Gemma 3 with sliding-window layers).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import torch

from harness.engines.base import (
    EngineError,
    ImagePart,
    LoRARef,
    Message,
    Request,
    SamplingParams,
    TextPart,
    VideoPart,
)
from harness.engines.hf import HFEngine
from harness.models.loader import ModelNotAvailableError, _chat_template, resolve_model
from harness.models.tiny import build_tiny
from harness.models.tokenizer import CHATML_CHAT_TEMPLATE

TINY = "tiny-qwen2-lm"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                    "chat_template.json", "generation_config.json")


@pytest.fixture(scope="module")
def engine() -> Iterator[HFEngine]:
    eng = HFEngine(model=TINY, device="cpu", dtype="float32", batch_size=4)
    yield eng
    eng.close()


def _reference(path: Path) -> tuple[Any, Any]:
    """An independent transformers model (eager attention) and tokenizer for ``path``.

    The tokenizer is the class ``tokenizer_config.json`` declares (the generic fast one):
    ``AutoTokenizer`` would substitute ``Qwen2Tokenizer`` for ``model_type`` ``qwen2``.
    """
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager", local_files_only=True
    ).eval()
    return model, PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)


@pytest.fixture(scope="module")
def reference() -> tuple[Any, Any]:
    return _reference(build_tiny(TINY))


def _messages(i: int) -> list[dict[str, str]]:
    """Chat prompts of different lengths and roles, as chat templates consume them."""
    prompts: list[list[dict[str, str]]] = [
        [{"role": "user", "content": "Is there any anomaly in the video? Answer yes or no."}],
        [{"role": "system", "content": "You are a surveillance monitor."},
         {"role": "user", "content": "A man is running."}],
        [{"role": "system", "content": "Please respond with a single word."},
         {"role": "user", "content": "Describe the scene: a crowd near the station at night, "
                                     "people walking, a car parking, then smoke from a shop."},
         {"role": "assistant", "content": "normal"},
         {"role": "user", "content": "Are you certain? Answer Yes or No."}],
        [{"role": "user", "content": "fire"}],
    ]
    return prompts[i % len(prompts)]


def _request(i: int, **sampling: Any) -> Request:
    msgs = tuple(Message(cast(Any, m["role"]), (TextPart(m["content"]),)) for m in _messages(i))
    sp = SamplingParams(**{"max_new_tokens": 10, **sampling})
    return Request(msgs, sp, request_id=f"t{i}")


def _prompt_ids(tok: Any, i: int) -> list[int]:
    enc = tok.apply_chat_template(_messages(i), add_generation_prompt=True, tokenize=True,
                                  return_dict=True)
    return [int(t) for t in enc["input_ids"]]


def _greedy_reference(model: Any, prompt: list[int], max_new: int) -> tuple[list[int], list[Any]]:
    """Greedy decoding by full recomputation; returns the tokens and each step's float32
    logits ``(V,)``. Stops after an EOS of the generation config (kept)."""
    eos = model.generation_config.eos_token_id
    eos = {eos} if isinstance(eos, int) else set(eos)
    ids, steps = list(prompt), []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            steps.append(logits)
            tok = int(logits.argmax())
            ids.append(tok)
            if tok in eos:
                break
    return ids[len(prompt):], steps


# -- (1) greedy generation against plain transformers -------------------------------------------
def test_prompt_encoding_is_the_chat_template(engine: HFEngine, reference: tuple) -> None:
    _, tok = reference
    for i in range(4):
        assert engine.encoder.encode(_request(i)).input_ids == _prompt_ids(tok, i)


def test_greedy_equals_transformers_reference(engine: HFEngine, reference: tuple) -> None:
    model, tok = reference
    got = engine.generate([_request(i, max_new_tokens=12, logprobs=0) for i in range(4)])
    for i, resp in enumerate(got):
        want, steps = _greedy_reference(model, _prompt_ids(tok, i), 12)
        c = resp.completions[0]
        assert c.token_ids == want
        assert c.text == tok.decode(want, skip_special_tokens=True)
        ref_lp = [float(torch.log_softmax(s, -1)[t]) for s, t in zip(steps, want, strict=True)]
        np.testing.assert_allclose(c.token_logprobs, ref_lp, atol=1e-4)


# -- (2) batching -------------------------------------------------------------------------------
def test_batch_equals_one_at_a_time(engine: HFEngine) -> None:
    reqs = [_request(i, max_new_tokens=8, logprobs=3) for i in range(4)]
    reqs += [_request(i, max_new_tokens=8, temperature=0.9, top_p=0.9, n=2, seed=7 + i,
                      logprobs=0) for i in range(3)]
    reqs.append(_request(2, max_new_tokens=8, stop=(" ",)))
    batched = engine.generate(reqs)
    for req, b in zip(reqs, batched, strict=True):
        alone = engine.generate([req])[0]
        assert [c.text for c in b.completions] == [c.text for c in alone.completions]
        for cb, ca in zip(b.completions, alone.completions, strict=True):
            assert cb.token_ids == ca.token_ids and cb.finish_reason == ca.finish_reason
            np.testing.assert_allclose(cb.token_logprobs, ca.token_logprobs, atol=1e-4)
    sampled = batched[4].completions
    assert len(sampled) == 2 and sampled[0].token_ids != sampled[1].token_ids
    assert batched[7].completions[0].finish_reason == "stop"
    assert " " not in batched[7].completions[0].text


# -- (3) target tokens and top log-probs --------------------------------------------------------
def test_target_logprobs_equal_reference_log_softmax(engine: HFEngine, reference: tuple) -> None:
    model, tok = reference
    words = ("yes", "no", "Yes", " No")
    got = engine.generate([_request(i, max_new_tokens=1, target_tokens=words, logprobs=5)
                           for i in range(4)])
    for i, resp in enumerate(got):
        with torch.no_grad():
            logits = model(torch.tensor([_prompt_ids(tok, i)])).logits[0, -1].float()
        lp = torch.log_softmax(logits, -1)
        c = resp.completions[0]
        assert set(c.target_logprobs[0]) == set(words)
        for w in words:
            (tid,) = tok.encode(w, add_special_tokens=False)
            assert c.target_logprobs[0][w] == pytest.approx(float(lp[tid]), abs=1e-4)
        top_v, top_i = lp.topk(5)
        want = {tok.decode([int(t)]): float(v) for t, v in zip(top_i, top_v, strict=True)}
        assert list(c.top_logprobs[0]) == list(want)
        np.testing.assert_allclose(list(c.top_logprobs[0].values()), list(want.values()),
                                   atol=1e-4)


def test_allowed_tokens_and_greedy_n(engine: HFEngine) -> None:
    allowed = ("Yes", "No")
    r = engine.generate([_request(0, max_new_tokens=2, allowed_tokens=allowed, logprobs=5,
                                  n=3)])[0]
    assert len(r.completions) == 3 and r.completions[0].text == r.completions[2].text
    for step in r.completions[0].top_logprobs:
        assert set(step) <= set(allowed)
        assert sum(np.exp(list(step.values()))) == pytest.approx(1.0, abs=1e-5)


# -- (4) visual inputs on a text model ----------------------------------------------------------
def test_visual_inputs_are_rejected(engine: HFEngine) -> None:
    img = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(EngineError, match=r"'tiny-qwen2-lm' is text-only.*image"):
        engine.generate([Request((Message.user(ImagePart(img), "What is shown?"),))])
    vid = np.zeros((2, 28, 28, 3), np.uint8)
    with pytest.raises(EngineError, match=r"'tiny-qwen2-lm' is text-only.*video"):
        engine.generate([Request((Message.user(VideoPart(vid), "Anomaly?"),))])
    with pytest.raises(EngineError, match="text-only"):
        engine.embed_frames([vid])
    with pytest.raises(EngineError, match="text-only"):
        engine.visual_tokens([vid])


# -- (5) capabilities, resolution, description --------------------------------------------------
def test_capabilities_and_description(engine: HFEngine, tmp_path: Path) -> None:
    caps = engine.capabilities
    assert caps.logprobs and caps.lora
    assert not (caps.video or caps.images or caps.embeddings or caps.visual_tokens)
    assert HFEngine.capabilities.video  # the class default (vision-language) is unchanged
    d = engine.describe()
    assert d["family"] == "text" and d["model"] == TINY and d["is_tiny"]
    assert d["model_class"] == "Qwen2ForCausalLM"
    res = resolve_model(TINY)
    assert (res.family, res.is_tiny, res.path) == ("text", True, build_tiny(TINY))
    local = tmp_path / "copy"
    shutil.copytree(build_tiny(TINY), local)
    assert resolve_model(str(local)).family == "text"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelNotAvailableError, match="supports"):
        resolve_model(str(bad))


def test_builtin_chatml_fallback(tmp_path: Path) -> None:
    no_template = SimpleNamespace(chat_template=None)
    assert _chat_template(no_template, tmp_path, "text") == CHATML_CHAT_TEMPLATE
    from jinja2 import Template

    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = Template(CHATML_CHAT_TEMPLATE).render(messages=msgs, add_generation_prompt=True,
                                                 bos_token="<s>")
    assert text == ("<s><|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert Template(CHATML_CHAT_TEMPLATE).render(messages=msgs[1:]).startswith("<|im_start|>")


# -- LoRA on a text model -----------------------------------------------------------------------
def test_lora_equals_merged_weights(engine: HFEngine) -> None:
    g = torch.Generator().manual_seed(0)
    pairs = {t.name: (torch.randn(4, t.in_features, generator=g) * 0.3,
                      torch.randn(t.out_features, 4, generator=g) * 0.3)
             for t in engine.lora_targets()}
    assert all(n.startswith("model.layers.") for n in pairs)
    reqs = [_request(i, max_new_tokens=6, logprobs=0) for i in range(3)]
    lora = LoRARef("t1", tensors={**pairs, "lora_alpha": 8.0})  # scale 2
    got = engine.generate([Request(r.messages, r.sampling, lora=lora) for r in reqs] + reqs[:1])
    merged = copy.copy(engine)
    merged.loaded = copy.copy(engine.loaded)
    merged.loaded.model = copy.deepcopy(engine.loaded.model)
    modules = dict(merged.loaded.model.named_modules())
    with torch.no_grad():
        for name, (a, b) in pairs.items():
            modules[name].weight += 2.0 * (b @ a)
    want = merged.generate(reqs)
    for g_, w in zip(got, want, strict=False):
        assert g_.completions[0].token_ids == w.completions[0].token_ids
        np.testing.assert_allclose(g_.completions[0].token_logprobs,
                                   w.completions[0].token_logprobs, atol=2e-4)
    plain = engine.generate(reqs[:1])[0].completions[0]
    assert got[3].completions[0].token_ids == plain.token_ids  # un-adapted row in the batch
    assert got[0].completions[0].token_logprobs != plain.token_logprobs


# -- other text architectures -------------------------------------------------------------------
_ARCHS: dict[str, dict[str, Any]] = {
    "llama": {},
    "qwen3": {"head_dim": 32},
    "mistral": {"sliding_window": 8},
    "phi3": {},
    "gemma2": {"head_dim": 32, "sliding_window": 8,
               "layer_types": ["sliding_attention", "full_attention"]},
    "gemma3_text": {"head_dim": 32, "sliding_window": 8,
                    "layer_types": ["sliding_attention", "full_attention"]},
}


def _tiny_arch(model_type: str, root: Path) -> Path:
    """A random 2-layer ``model_type`` checkpoint with ``tiny-qwen2-lm``'s tokenizer, chat
    template and generation config; weights re-scaled as :mod:`harness.models.tiny` does
    (peaky next-token distributions, so greedy ties are unlikely)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    src = build_tiny(TINY)
    base = json.loads((src / "config.json").read_text())
    cfg = AutoConfig.for_model(
        model_type, vocab_size=base["vocab_size"], hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=4096, bos_token_id=base["bos_token_id"],
        eos_token_id=base["eos_token_id"], pad_token_id=base["pad_token_id"],
        tie_word_embeddings=False, **_ARCHS[model_type],
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    gen = torch.Generator().manual_seed(1)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    # Gemma multiplies embeddings by sqrt(hidden): keep the scaled ones at std 1
    emb_std = 64**-0.5 if model_type.startswith("gemma") else 1.0
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.dim() < 2:
                continue
            std = emb_std if p is emb else 0.35 if p is head else float(p[0].numel()) ** -0.5
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    out = root / model_type
    model.save_pretrained(out)
    for f in _TOKENIZER_FILES:
        shutil.copy(src / f, out / f)
    return out


@pytest.mark.parametrize("model_type", sorted(_ARCHS))
def test_other_architectures(model_type: str, tmp_path: Path) -> None:
    path = _tiny_arch(model_type, tmp_path)
    eng = HFEngine(model=str(path), device="cpu", dtype="float32", batch_size=4)
    try:
        assert eng.resolved.family == "text" and eng.capabilities.lora
        model, tok = _reference(path)
        reqs = [_request(i, max_new_tokens=10, logprobs=0) for i in range(4)]
        got = eng.generate(reqs)  # one left-padded batch
        for i, resp in enumerate(got):
            want, steps = _greedy_reference(model, _prompt_ids(tok, i), 10)
            c = resp.completions[0]
            assert c.token_ids == want, (model_type, i)
            ref_lp = [float(torch.log_softmax(s, -1)[t]) for s, t in zip(steps, want,
                                                                          strict=True)]
            np.testing.assert_allclose(c.token_logprobs, ref_lp, atol=2e-4)
    finally:
        eng.close()
