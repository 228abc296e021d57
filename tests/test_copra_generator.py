"""COPRA's LoRA generator on the tiny Qwen2-VL: exact identity when untrained, conditioning,
batch invariance, gradients through the generated weights, factorised attention masks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from harness.models.lora import PerSampleLoRA, find_targets
from methods.copra.generator import GeneratorConfig, LoraGenerator, slot_masks


@pytest.fixture(scope="module")
def model(frozen_tiny_vlm: Any) -> Any:
    return frozen_tiny_vlm


def _gen(model: Any, **kw: Any) -> LoraGenerator:
    torch.manual_seed(0)
    targets = find_targets(model)
    cfg = GeneratorConfig(rank=2, width=32, heads=4, **kw)
    hidden = model.config.get_text_config().hidden_size
    return LoraGenerator(targets, hidden, cfg,
                         backbone_layers=model.config.get_text_config().num_hidden_layers)


def _vis(rows: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, 5, 64, generator=torch.Generator().manual_seed(seed))


def test_slot_masks_by_hand() -> None:
    layers = torch.tensor([0, 0, 1, 1])
    slots = torch.tensor([0, 1, 0, 1])
    intra, inter = slot_masks(layers, slots)
    assert intra.tolist() == [[False, False, True, True], [False, False, True, True],
                              [True, True, False, False], [True, True, False, False]]
    assert inter.tolist() == [[False, True, False, True], [True, False, True, False],
                              [False, True, False, True], [True, False, True, False]]


def test_shapes_counts_and_depth(model: Any) -> None:
    gen = _gen(model)
    targets = gen.targets
    assert gen.n_tokens == len(targets) * 2 * 2
    assert len(gen.blocks) == 1  # half of the tiny backbone's 2 decoder layers
    out = gen(_vis(3, 0))
    for t in targets:
        a, b = out[t.name]
        assert a.shape == (3, 2, t.in_features) and b.shape == (3, t.out_features, 2)
    assert gen.parameter_count() == sum(p.numel() for p in gen.parameters() if p.requires_grad)
    assert _gen(model, use_prior=False).prior is None


def test_untrained_generator_leaves_the_backbone_exactly_unchanged(model: Any) -> None:
    gen = _gen(model)
    ids = torch.randint(10, 200, (2, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = model(input_ids=ids).logits
        w = gen(_vis(2, 1))
        assert all(float(b.abs().max()) == 0.0 for _, b in w.values())
        with PerSampleLoRA(model, gen.targets, gen.cfg.scale()).apply(w):
            assert torch.equal(model(input_ids=ids).logits, base)


def test_gradient_reaches_the_generator_not_the_backbone(model: Any) -> None:
    gen = _gen(model)
    ids = torch.randint(10, 200, (2, 6), generator=torch.Generator().manual_seed(3))
    w = gen(_vis(2, 1))
    with PerSampleLoRA(model, gen.targets, gen.cfg.scale()).apply(w):
        loss = torch.log_softmax(model(input_ids=ids).logits, -1)[..., 7].mean()
    loss.backward()
    b_last = [m[2].weight.grad for k, m in gen.heads.items() if k.startswith("B|")]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in b_last)
    assert all(p.grad is None for p in model.parameters())


def test_conditioned_on_the_input_and_batch_invariant(model: Any) -> None:
    gen = _gen(model)
    with torch.no_grad():
        for k, m in gen.heads.items():  # leave the zero init so that B varies with the input
            if k.startswith("B|"):
                torch.nn.init.normal_(m[2].weight, std=0.1)
        vis = _vis(2, 7)
        both = gen(vis)
        one = gen(vis[1:2])
    name = gen.targets[0].name
    a, b = both[name]
    assert not torch.allclose(b[0], b[1])  # different videos, different adapters
    torch.testing.assert_close(b[1:2], one[name][1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a[1:2], one[name][0], rtol=1e-5, atol=1e-6)
