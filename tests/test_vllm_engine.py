"""The ``vllm`` engine against the ``hf`` engine on the tiny model (CPU, fp32), and the LoRA
export.

vLLM's CPU build serves the text-only ``tiny-qwen2-lm`` (the language model of
``tiny-qwen2-vl``, same weights); on text prompts its outputs must equal ``hf``'s on
``tiny-qwen2-vl`` token for token, log-probs within float tolerance. LoRA: an adapter served by
vLLM must give the output of ``hf`` with the adapter merged into the weights
(``W + scale * B @ A``, computed here with plain torch). All vLLM tests share one engine
(``vllm_engine`` in conftest.py: about a minute to start on CPU)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.engines.base import (
    EngineError,
    LoRARef,
    Message,
    Request,
    SamplingParams,
    VideoPart,
)
from harness.engines.hf import HFEngine
from harness.engines.lora_export import (
    LM_TARGET_MODULES,
    LoRAStore,
    normalize_tensors,
    write_peft_dir,
)
from harness.models.tiny import TINY_TEXT_MODELS, build_tiny

PROMPTS = (
    "Is anything abnormal happening in this scene? Answer yes or no.",
    "Describe the video.",
    "A man runs across the street while a car stops. Is it normal?",
    "hello",
    "Frame 12 of 64, at 3.5 s: scene 0 or 1?",  # digits: tokenizer parity
    "Explain, step by step, why the crowd is gathering near the station entrance.",
)
# tiny model: 2 layers, hidden 64 (2 heads x 32, 1 KV head), MLP 128
_SHAPES = {"q_proj": (64, 64), "k_proj": (32, 64), "v_proj": (32, 64), "o_proj": (64, 64),
           "gate_proj": (128, 64), "up_proj": (128, 64), "down_proj": (64, 128)}  # fmt: skip


def _req(text: str, rid: str = "", lora: LoRARef | None = None, **sampling: Any) -> Request:
    sp = SamplingParams(**{"max_new_tokens": 8, **sampling})
    return Request((Message.user(text),), sp, lora=lora, request_id=rid or text[:10])


def _module_path(layer: int, proj: str) -> str:
    part = "self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"model.layers.{layer}.{part}.{proj}"


def _random_lora(seed: int, rank: int = 8, std_b: float = 0.6) -> dict[str, Any]:
    """Pairs-format adapter on every LM projection of the tiny model; B is nonzero."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {}
    for layer in range(2):
        for proj, (o, i) in _SHAPES.items():
            a = torch.randn(rank, i, generator=g) * i**-0.5
            b = torch.randn(o, rank, generator=g) * std_b * rank**-0.5
            out[_module_path(layer, proj)] = (a, b)
    return out


def _merged_hf(tensors: dict[str, Any], scale: float = 1.0) -> HFEngine:
    """``hf`` on tiny-qwen2-vl with ``W += scale * B @ A`` merged into its language model."""
    eng = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=4)
    params = dict(eng.loaded.model.named_parameters())
    with torch.no_grad():
        for module, (a, b) in tensors.items():
            name = module.replace("model.", "model.language_model.", 1) + ".weight"
            params[name] += scale * (torch.as_tensor(b) @ torch.as_tensor(a))
    return eng


@pytest.fixture(scope="module")
def hf() -> Iterator[HFEngine]:
    eng = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=4)
    yield eng
    eng.close()


@pytest.fixture
def count_calls(vllm_engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the number of prompts of every ``LLM.generate`` call."""
    calls: list[int] = []
    llm = vllm_engine._llm
    real = llm.generate

    def spy(prompts: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(prompts))
        return real(prompts, *args, **kwargs)

    monkeypatch.setattr(llm, "generate", spy)
    return calls


# -- the tiny text model ----------------------------------------------------------------------
def test_tiny_text_model_is_the_vl_language_model() -> None:
    from safetensors.torch import load_file

    lm = load_file(str(build_tiny("tiny-qwen2-lm") / "model.safetensors"))
    vl = load_file(str(build_tiny(TINY_TEXT_MODELS["tiny-qwen2-lm"]) / "model.safetensors"))
    assert set(lm) == {k for k in vl if not k.startswith(("visual.", "model.visual."))}
    for key, value in lm.items():  # Qwen2-VL checkpoints keep the language model's key names
        assert value.equal(vl[key]), key
    cfg = json.loads((build_tiny("tiny-qwen2-lm") / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen2ForCausalLM"]
    assert cfg["hidden_size"] // cfg["num_attention_heads"] >= 32  # vLLM CPU attention


# -- generation against hf --------------------------------------------------------------------
def test_greedy_matches_hf_token_for_token(vllm_engine: Any, hf: HFEngine,
                                           count_calls: list[int]) -> None:  # fmt: skip
    reqs = [_req(p, f"r{i}", max_new_tokens=12) for i, p in enumerate(PROMPTS)]
    got = vllm_engine.generate(reqs)
    want = hf.generate(reqs)
    assert count_calls == [len(reqs)]  # one wave = one LLM.generate call, never sliced
    assert [r.request_id for r in got] == [r.request_id for r in reqs]
    for g, w in zip(got, want, strict=True):
        assert g.completions[0].token_ids == w.completions[0].token_ids
        assert g.completions[0].text == w.completions[0].text
        assert g.completions[0].finish_reason == w.completions[0].finish_reason


def test_wave_is_not_sliced_by_batch_size(vllm_engine: Any, count_calls: list[int]) -> None:
    reqs = [_req(f"{p} ({k})", max_new_tokens=2) for k in range(3) for p in PROMPTS]
    assert len(reqs) > vllm_engine.batch_size
    assert len(vllm_engine.generate(reqs)) == len(reqs)
    assert count_calls == [len(reqs)]


def test_top_logprobs_match_hf(vllm_engine: Any, hf: HFEngine) -> None:
    reqs = [_req(p, max_new_tokens=5, logprobs=4) for p in PROMPTS[:3]]
    for g, w in zip(vllm_engine.generate(reqs), hf.generate(reqs), strict=True):
        gc, wc = g.completions[0], w.completions[0]
        assert gc.token_ids == wc.token_ids
        assert gc.token_logprobs == pytest.approx(wc.token_logprobs, abs=2e-4)
        assert len(gc.top_logprobs) == len(wc.top_logprobs) == len(gc.token_ids)
        for gd, wd in zip(gc.top_logprobs, wc.top_logprobs, strict=True):
            assert list(gd) == list(wd)  # same texts, same order
            assert list(gd.values()) == pytest.approx(list(wd.values()), abs=2e-4)


def test_target_tokens_match_hf_in_a_mixed_wave(vllm_engine: Any, hf: HFEngine,
                                                count_calls: list[int]) -> None:  # fmt: skip
    targets = ("yes", "no", " Yes", "maybe")  # "maybe" is two tokens: left out, as in hf
    reqs = [
        _req(PROMPTS[0], "t", max_new_tokens=3, logprobs=2, target_tokens=targets),
        _req(PROMPTS[1], "k", max_new_tokens=3, logprobs=2),
        _req(PROMPTS[2], "p", max_new_tokens=3),
    ]
    got, want = vllm_engine.generate(reqs), hf.generate(reqs)
    assert sorted(count_calls) == [1, 2]  # target-id rows and top-k rows: two vLLM calls
    t_got, t_want = got[0].completions[0], want[0].completions[0]
    assert t_got.token_ids == t_want.token_ids
    assert len(t_got.target_logprobs) == len(t_got.token_ids)
    for gd, wd in zip(t_got.target_logprobs, t_want.target_logprobs, strict=True):
        assert set(gd) == set(wd) == {"yes", "no", " Yes"}
        for key in wd:
            assert gd[key] == pytest.approx(wd[key], abs=2e-4)
    # the top-k request of the same wave keeps its top-k
    k_got, k_want = got[1].completions[0], want[1].completions[0]
    assert [list(d) for d in k_got.top_logprobs] == [list(d) for d in k_want.top_logprobs]
    assert not k_got.target_logprobs
    assert got[2].completions[0].token_ids == want[2].completions[0].token_ids
    assert not got[2].completions[0].top_logprobs


def test_stop_strings_and_n(vllm_engine: Any, hf: HFEngine) -> None:
    base = hf.generate([_req(PROMPTS[2], max_new_tokens=12)])[0].completions[0].text
    stop = base[len(base) // 2 : len(base) // 2 + 2]
    assert stop.strip(), base
    reqs = [_req(PROMPTS[2], max_new_tokens=12, stop=(stop,), n=2)]
    got, want = vllm_engine.generate(reqs)[0], hf.generate(reqs)[0]
    assert len(got.completions) == 2
    for g, w in zip(got.completions, want.completions, strict=True):
        assert (g.text, g.token_ids, g.finish_reason) == (w.text, w.token_ids, w.finish_reason)


def test_seeded_sampling_is_reproducible(vllm_engine: Any) -> None:
    reqs = [_req(PROMPTS[3], max_new_tokens=8, temperature=1.0, n=3, seed=7),
            _req(PROMPTS[3], max_new_tokens=8, temperature=1.0, n=1)]  # fmt: skip
    a, b = vllm_engine.generate(reqs), vllm_engine.generate(reqs)
    assert [c.token_ids for c in a[0].completions] == [c.token_ids for c in b[0].completions]
    assert len(a[0].completions) == 3
    assert len({tuple(c.token_ids) for c in a[0].completions}) > 1  # distinct per-row seeds


def test_text_model_rejects_video(vllm_engine: Any) -> None:
    import numpy as np

    frames = np.zeros((2, 56, 56, 3), np.uint8)
    req = Request((Message.user(VideoPart(frames, fps=1.0), "anything?"),))
    with pytest.raises(EngineError, match="text-only"):
        vllm_engine.generate([req])


def test_describe_records_model_and_lora_sizing(vllm_engine: Any) -> None:
    d = vllm_engine.describe()
    assert d["engine"] == "vllm" and d["model"] == "tiny-qwen2-lm" and d["is_tiny"]
    assert d["dtype"] == "float32" and d["device"] == "cpu"
    assert d["vllm"]
    assert d["lora"] == {"enable_lora": True, "max_lora_rank": 8, "max_loras": 2,
                         "max_cpu_loras": 4}  # fmt: skip


def test_cache_identity_is_stable_across_start(vllm_engine: Any) -> None:
    from harness.engines.vllm import VLLMEngine
    from tests.conftest import VLLM_TEST_ARGS

    fresh = VLLMEngine(**{**VLLM_TEST_ARGS, "max_loras": 1, "batch_size": 3})  # not started
    assert fresh._llm is None
    assert fresh.cache_identity() == vllm_engine.cache_identity()
    assert "lora" not in fresh.cache_identity() and "model_fingerprint" in fresh.cache_identity()
    fresh.close()


# -- LoRA -------------------------------------------------------------------------------------
def test_lora_matches_merged_hf_and_changes_output(vllm_engine: Any) -> None:
    tensors = _random_lora(1)
    ref = LoRARef("lora-one", tensors=tensors)
    reqs = [_req(p, f"r{i}", max_new_tokens=8, logprobs=2) for i, p in enumerate(PROMPTS[:3])]
    plain = vllm_engine.generate(reqs)
    adapted = vllm_engine.generate([_req(p, f"r{i}", lora=ref, max_new_tokens=8, logprobs=2)
                                    for i, p in enumerate(PROMPTS[:3])])  # fmt: skip
    merged = _merged_hf(tensors)
    try:
        want = merged.generate(reqs)
    finally:
        merged.close()
    assert any(p.completions[0].token_ids != a.completions[0].token_ids
               for p, a in zip(plain, adapted, strict=True))  # fmt: skip
    for a, w in zip(adapted, want, strict=True):
        assert a.completions[0].token_ids == w.completions[0].token_ids
        assert a.completions[0].token_logprobs == pytest.approx(
            w.completions[0].token_logprobs, abs=1e-3
        )


def test_lora_alpha_scaling_and_peft_layout_input(vllm_engine: Any) -> None:
    pairs = _random_lora(2, std_b=0.3)
    peft = {f"base_model.model.{m}.lora_{ab}.weight": t
            for m, (a, b) in pairs.items() for ab, t in (("A", a), ("B", b))}  # fmt: skip
    peft["lora_alpha"] = 16.0  # r = 8: scale 2
    req = [_req(p, max_new_tokens=8) for p in PROMPTS[:3]]
    got = vllm_engine.generate([Request(r.messages, r.sampling, LoRARef("peft-a16", tensors=peft))
                                for r in req])  # fmt: skip
    merged = _merged_hf(pairs, scale=2.0)
    try:
        want = merged.generate(req)
    finally:
        merged.close()
    assert [g.completions[0].token_ids for g in got] == [w.completions[0].token_ids for w in want]


def test_two_adapters_in_one_call_match_single_adapter_calls(
    vllm_engine: Any, count_calls: list[int]
) -> None:
    one = LoRARef("mix-1", tensors=_random_lora(11))
    two = LoRARef("mix-2", tensors=_random_lora(12))
    three = LoRARef("mix-3", tensors=_random_lora(13))  # > max_loras=2: served in turns
    plan = [(PROMPTS[0], one), (PROMPTS[0], two), (PROMPTS[1], one), (PROMPTS[2], three),
            (PROMPTS[2], two)]  # fmt: skip
    reqs = [_req(p, f"q{i}", lora=lo, max_new_tokens=8) for i, (p, lo) in enumerate(plan)]
    mixed = vllm_engine.generate(reqs)
    assert count_calls == [len(reqs)]
    singles = [vllm_engine.generate([r])[0] for r in reqs]
    assert [m.request_id for m in mixed] == [r.request_id for r in reqs]
    for m, s in zip(mixed, singles, strict=True):
        assert m.completions[0].token_ids == s.completions[0].token_ids
    assert mixed[0].completions[0].token_ids != mixed[1].completions[0].token_ids


def test_rows_without_adapter_in_a_lora_wave(vllm_engine: Any, hf: HFEngine,
                                             count_calls: list[int]) -> None:  # fmt: skip
    """A wave mixing adapter and no-adapter requests: each gets its own output (on vLLM's CPU
    platform the engine sends the two kinds as separate calls, see the engine's docstring)."""
    one = LoRARef("base-mix-1", tensors=_random_lora(61))
    reqs = [_req(PROMPTS[1], "lora", lora=one), _req(PROMPTS[1], "base"),
            _req(PROMPTS[2], "base2")]  # fmt: skip
    got = vllm_engine.generate(reqs)
    want = hf.generate(reqs[1:])
    # vLLM's CPU platform: adapter rows and base rows apart; elsewhere one call
    assert sorted(count_calls) == ([1, 2] if vllm_engine._cpu_lora_bug else [3])
    assert [g.completions[0].token_ids for g in got[1:]] == [
        w.completions[0].token_ids for w in want]  # fmt: skip
    assert got[0].completions[0].token_ids != got[1].completions[0].token_ids


def test_lora_from_a_peft_directory(vllm_engine: Any, tmp_path: Path) -> None:
    tensors = _random_lora(21)
    write_peft_dir(tensors, tmp_path / "adapter")
    by_dir = vllm_engine.generate([_req(PROMPTS[4], lora=LoRARef("dir-21", path=str(
        tmp_path / "adapter")))])  # fmt: skip
    by_tensors = vllm_engine.generate([_req(PROMPTS[4], lora=LoRARef("t-21", tensors=tensors))])
    assert by_dir[0].completions[0].token_ids == by_tensors[0].completions[0].token_ids


def test_lora_rank_above_the_engine_limit_is_an_error(vllm_engine: Any) -> None:
    ref = LoRARef("too-big", tensors=_random_lora(31, rank=16))
    with pytest.raises(EngineError, match="max_lora_rank"):
        vllm_engine.generate([_req(PROMPTS[0], lora=ref)])


# -- the PEFT writer (no vLLM needed) ---------------------------------------------------------
def test_peft_dir_layout_and_vision_keys_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from safetensors.torch import load_file

    tensors = _random_lora(41)
    tensors["model.visual.blocks.0.attn.qkv"] = (torch.ones(8, 64), torch.ones(192, 8))
    tensors["model.language_model.embed_tokens"] = (torch.ones(8, 4), torch.ones(4, 8))
    with caplog.at_level(logging.WARNING, logger="harness.engines.lora_export"):
        rank, modules = write_peft_dir(tensors, tmp_path / "a")
    assert "dropped 2 module(s)" in caplog.text and "visual.blocks.0" in caplog.text
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors"]  # fmt: skip
    cfg = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == rank == 8 and cfg["lora_alpha"] == 8
    assert sorted(cfg["target_modules"]) == sorted(LM_TARGET_MODULES)
    state = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    assert len(state) == 2 * len(modules) == 2 * 14
    assert all(k.startswith("base_model.model.model.layers.") for k in state)
    a, b = tensors["model.layers.0.self_attn.q_proj"]
    assert state["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].equal(a)
    assert state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].equal(b)


def test_mixed_ranks_are_zero_padded(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    a4, b4 = torch.randn(4, 64), torch.randn(64, 4)
    a8, b8 = torch.randn(8, 64), torch.randn(32, 8)
    tensors = {"model.layers.0.self_attn.q_proj": (a4, b4),
               "model.layers.0.self_attn.k_proj": (a8.numpy(), b8.numpy())}  # fmt: skip
    rank, _ = write_peft_dir(tensors, tmp_path / "p")
    state = load_file(str(tmp_path / "p" / "adapter_model.safetensors"))
    pa = state["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    pb = state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
    assert rank == 8 and pa.shape == (8, 64) and pb.shape == (64, 8)
    torch.testing.assert_close(pb @ pa, b4 @ a4)


def test_malformed_tensors_are_rejected() -> None:
    with pytest.raises(ValueError, match="lacks its lora_B"):
        normalize_tensors({"model.layers.0.self_attn.q_proj.lora_A.weight": torch.ones(2, 4)})
    with pytest.raises(ValueError, match="do not"):
        normalize_tensors({"model.layers.0.self_attn.q_proj": (torch.ones(2, 4), torch.ones(4, 3))})
    with pytest.raises(ValueError, match="mix"):
        normalize_tensors({
            "model.layers.0.self_attn.q_proj": (torch.ones(2, 4), torch.ones(4, 2)),
            "model.layers.0.mlp.up_proj.lora_A.weight": torch.ones(2, 4),
        })  # fmt: skip
    with pytest.raises(ValueError, match="no language-model module"):
        write_peft_dir({"visual.blocks.0.attn.qkv": (torch.ones(2, 4), torch.ones(4, 2))},
                       Path("/nonexistent"))  # fmt: skip


def test_store_unique_names_ids_and_one_write_per_content(tmp_path: Path) -> None:
    store = LoRAStore()
    t1, t2 = _random_lora(51), _random_lora(52)
    a = store.register("a", tensors=t1)
    again = store.register("a", tensors={k: (x.clone(), y.clone()) for k, (x, y) in t1.items()})
    b = store.register("b", tensors=t2)
    a_twin = store.register("a-twin", tensors=t1)  # same content, another name
    write_peft_dir(t2, tmp_path / "d")
    d = store.register("d", path=str(tmp_path / "d"))
    assert again is a
    assert len({x.int_id for x in (a, b, a_twin, d)}) == 4 and min(a.int_id, b.int_id) >= 1
    assert a_twin.path == a.path and b.path != a.path and d.path == tmp_path / "d"
    root = store.root
    assert root is not None and a.path.parent == root
    if Path("/dev/shm").is_dir():
        assert str(root).startswith("/dev/shm/vad-eval-lora-")
    assert len([p for p in root.iterdir() if p.is_dir()]) == 2
    with pytest.raises(ValueError, match="two different adapters"):
        store.register("a", tensors=t2)
    store.close()
    assert not root.exists() and (tmp_path / "d" / "adapter_config.json").is_file()


# -- video (needs vLLM's Qwen2-VL modules: torchvision, i.e. a GPU install or CUDA torch) -------
def _vl_modules_importable() -> bool:
    try:
        import torchvision.transforms.v2  # noqa: F401
    except Exception:  # noqa: BLE001 - the CPU torch has no torchvision build here
        return False
    from harness.engines.vllm import vllm_available

    return vllm_available()


@pytest.mark.skipif(not _vl_modules_importable(), reason="vLLM's Qwen2-VL needs torchvision")
@pytest.mark.parametrize("model", ["tiny-qwen2-vl", "tiny-qwen2.5-vl"])
def test_video_and_image_match_hf(model: str) -> None:
    """Frames, fps and pixel caps reach vLLM's processor as ``hf`` uses them. Qwen2.5-VL videos
    are kept short (temporal extent below the spatial one): transformers 5.23 starts the text
    after a video at ``max(h, w)`` while vLLM (like Qwen's original code) uses the largest
    position including time, so longer videos legitimately differ."""
    import numpy as np

    from harness.engines.base import ImagePart
    from harness.engines.vllm import VLLMEngine

    def frames(n: int, h: int, w: int, seed: int) -> Any:
        return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)

    sp = SamplingParams(max_new_tokens=6, logprobs=3)
    reqs = [
        Request((Message.user(VideoPart(frames(4, 112, 112, 1), fps=2.0, frame_indices=(0, 8, 16,
                24)), "Anomaly? yes or no"),), sp, request_id="v1"),
        Request((Message.user(VideoPart(frames(4, 84, 140, 2), fps=2.0), "Describe."),), sp,
                request_id="v2"),
        Request((Message.user(ImagePart(frames(1, 98, 98, 3)[0]), "What is shown?"),), sp,
                request_id="img"),
        Request((Message.user("Just text, is it normal?"),), sp, request_id="txt"),
    ]  # fmt: skip
    if model == "tiny-qwen2-vl":
        reqs.append(Request((Message.user(VideoPart(frames(8, 84, 140, 4), fps=1.0),
                                          "Describe."),), sp, request_id="v3"))  # fmt: skip
    vl = VLLMEngine(model=model, device="cpu", dtype="float32", max_model_len=4096,
                    limit_mm_per_prompt={"image": 1, "video": 1})  # fmt: skip
    ref = HFEngine(model=model, device="cpu", batch_size=4)
    try:
        got, want = vl.generate(reqs), ref.generate(reqs)
    finally:
        vl.close()
        ref.close()
    for g, w in zip(got, want, strict=True):
        assert g.completions[0].token_ids == w.completions[0].token_ids, g.request_id
        assert g.completions[0].token_logprobs == pytest.approx(
            w.completions[0].token_logprobs, abs=2e-3
        ), g.request_id
