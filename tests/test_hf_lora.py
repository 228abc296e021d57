"""Per-request LoRA, constrained decoding and visual tokens of the ``hf`` engine, on the tiny
Qwen2-VL. References: a merged-weight copy of the backbone (``W + scale * B A``), requests run
one at a time, and the PEFT directory format the vllm engine exports."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
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
from harness.engines.lora_export import write_peft_dir


@pytest.fixture(scope="module")
def engine() -> Iterator[HFEngine]:
    eng = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=4)
    yield eng
    eng.close()


def _frames(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _request(seed: int, lora: LoRARef | None = None, **sampling: object) -> Request:
    sp = SamplingParams(**{"max_new_tokens": 5, "logprobs": 3, **sampling})  # type: ignore[arg-type]
    msg = Message.user(VideoPart(_frames(4, 56 + 28 * (seed % 3), seed), fps=2.0),
                       "Is anything abnormal happening? Yes or No.")
    return Request((msg,), sp, lora=lora, request_id=str(seed))


def _pairs(engine: HFEngine, seed: int, rank: int = 4, zero_b: bool = False,
           layer_filter: int | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t in engine.lora_targets():
        if layer_filter is not None and t.layer != layer_filter:
            continue
        a = torch.randn(rank, t.in_features, generator=g) * 0.3
        b = torch.zeros(t.out_features, rank) if zero_b else \
            torch.randn(t.out_features, rank, generator=g) * 0.3
        out[t.name] = (a, b)
    return out


def _merged_engine(engine: HFEngine, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]],
                   scale: float) -> HFEngine:
    """A shallow copy of ``engine`` whose model is a deep copy with ``W += scale * B A``."""
    merged = copy.copy(engine)
    merged.loaded = copy.copy(engine.loaded)
    model = copy.deepcopy(engine.loaded.model)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, (a, b) in pairs.items():
            modules[name].weight += scale * (b @ a)
    merged.loaded.model = model
    return merged


def _assert_same(got: list, want: list) -> None:
    for g, w in zip(got, want, strict=True):
        cg, cw = g.completions[0], w.completions[0]
        assert cg.token_ids == cw.token_ids
        np.testing.assert_allclose(cg.token_logprobs, cw.token_logprobs, atol=2e-4)


def test_adapter_equals_merged_weights(engine: HFEngine) -> None:
    pairs = _pairs(engine, 1)
    ref = LoRARef("a1", tensors={**pairs, "lora_alpha": 8.0})  # scale 8 / 4 = 2
    got = engine.generate([_request(s, ref) for s in range(3)])
    want = _merged_engine(engine, pairs, 2.0).generate([_request(s) for s in range(3)])
    _assert_same(got, want)
    plain = engine.generate([_request(0)])
    assert got[0].completions[0].token_logprobs != plain[0].completions[0].token_logprobs


def test_zero_b_adapter_is_the_backbone(engine: HFEngine) -> None:
    ref = LoRARef("zero", tensors=_pairs(engine, 2, zero_b=True))
    _assert_same(engine.generate([_request(s, ref) for s in range(2)]),
                 engine.generate([_request(s) for s in range(2)]))


def test_mixed_adapters_in_one_batch_equal_one_at_a_time(engine: HFEngine) -> None:
    a1 = LoRARef("m1", tensors=_pairs(engine, 3, rank=2))
    a2 = LoRARef("m2", tensors=_pairs(engine, 4, rank=6, layer_filter=1))  # other rank, subset
    reqs = [_request(0, a1), _request(1), _request(2, a2), _request(3, a1), _request(4, a2)]
    batched = engine.generate(reqs)
    alone = [engine.generate([r])[0] for r in reqs]
    _assert_same(batched, alone)


def test_peft_directory_and_old_module_names(engine: HFEngine, tmp_path: Path) -> None:
    pairs = _pairs(engine, 5)
    write_peft_dir({**pairs, "lora_alpha": 4.0}, tmp_path / "peft")
    from_dir = engine.generate([_request(0, LoRARef("d", path=str(tmp_path / "peft")))])
    # transformers 4 names (model.layers.N...) for transformers 5's model.language_model.layers.N
    old = {n.replace("model.language_model.", "model."): ab for n, ab in pairs.items()}
    assert old.keys() != pairs.keys()
    from_old = engine.generate([_request(0, LoRARef("o", tensors=old))])
    want = _merged_engine(engine, pairs, 1.0).generate([_request(0)])
    _assert_same(from_dir, want)
    _assert_same(from_old, want)


def test_bad_adapters_are_named(engine: HFEngine) -> None:
    t = engine.lora_targets()[0]
    with pytest.raises(EngineError, match="not an adaptable module"):
        engine.generate([_request(0, LoRARef("x", tensors={
            "model.language_model.layers.9.self_attn.q_proj": (torch.zeros(2, 64),
                                                               torch.zeros(64, 2))}))])
    with pytest.raises(EngineError, match="adapts no language-model module"):
        engine.generate([_request(0, LoRARef("n", tensors={
            "model.language_model.norm": (torch.zeros(2, 64), torch.zeros(64, 2))}))])
    with pytest.raises(EngineError, match="bad"):
        engine.generate([_request(0, LoRARef("bad", tensors={
            t.name: (torch.zeros(2, t.in_features + 1), torch.zeros(t.out_features, 2))}))])


def test_allowed_tokens_renormalise(engine: HFEngine) -> None:
    allowed = ("Yes", "No")
    free = engine.generate([_request(s, max_new_tokens=1, logprobs=50,
                                     target_tokens=allowed) for s in range(3)])
    cons = engine.generate([_request(s, max_new_tokens=3, logprobs=5, temperature=1.0, n=6,
                                     allowed_tokens=allowed) for s in range(3)])
    for f, c in zip(free, cons, strict=True):
        raw = f.completions[0].target_logprobs[0]
        z = math.log(sum(math.exp(v) for v in raw.values()))
        for comp in c.completions:
            assert comp.token_ids and all(
                engine.loaded.tokenizer.decode([t]) in allowed for t in comp.token_ids)
            first = comp.top_logprobs[0]
            assert set(first) <= set(allowed)
            assert math.isclose(sum(math.exp(v) for v in first.values()), 1.0, rel_tol=1e-5)
            for text, lp in first.items():  # P(text | allowed) = P(text) / sum_allowed P
                assert math.isclose(lp, raw[text] - z, abs_tol=1e-4)
    with pytest.raises(EngineError, match="exactly one token"):
        engine.generate([_request(0, allowed_tokens=("Yes", "abnormality happening"))])


def test_visual_tokens_and_embedding(engine: HFEngine) -> None:
    clips = [_frames(4, 112, 1), _frames(2, 56, 2)]
    toks = engine.visual_tokens(clips)
    hidden = engine.loaded.model.config.get_text_config().hidden_size
    # Qwen2-VL: temporal patch 2, 14-px patches merged 2x2: (T/2, (H/28) * (W/28)) tokens
    assert [tuple(t.shape) for t in toks] == [(2, 4 * 4, hidden), (1, 2 * 2, hidden)]
    assert not toks[0].requires_grad
    mean = toks[0].float().mean((0, 1))
    np.testing.assert_allclose(engine.embed_frames(clips[:1])[0],
                               (mean / mean.norm()).numpy(), atol=1e-5)


def test_peft_directory_checks_and_name_reuse(engine: HFEngine, tmp_path: Path) -> None:
    import json

    pairs = _pairs(engine, 6)
    write_peft_dir(pairs, tmp_path / "p")
    cfg_file = tmp_path / "p" / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "use_rslora": True}))
    with pytest.raises(EngineError, match="rsLoRA"):
        engine.generate([_request(0, LoRARef("rs", path=str(tmp_path / "p")))])
    cfg_file.write_text(json.dumps({**cfg, "r": 3}))
    with pytest.raises(EngineError, match="field 'r' is 3"):
        engine.generate([_request(0, LoRARef("r3", path=str(tmp_path / "p")))])
    cfg_file.write_text("{not json")
    with pytest.raises(EngineError, match="unreadable adapter"):
        engine.generate([_request(0, LoRARef("bad", path=str(tmp_path / "p")))])
    with pytest.raises(EngineError, match="two different adapters"):
        engine.generate([_request(0, LoRARef("same", tensors=_pairs(engine, 7))),
                         _request(1, LoRARef("same", tensors=_pairs(engine, 8)))])
