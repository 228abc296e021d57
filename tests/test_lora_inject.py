"""Per-sample LoRA injection on the tiny Qwen2-VL (harness/models/lora.py), against
merged-weight copies of the backbone as the independent reference."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from harness.models.lora import PerSampleLoRA, find_targets


@pytest.fixture(scope="module")
def model(frozen_tiny_vlm: Any) -> Any:
    return frozen_tiny_vlm


def _ids(model: Any, rows: int, length: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(10, 200, (rows, length), generator=g)


def _adapters(targets: list[Any], rows: int, rank: int, seed: int, zero_b: bool = False,
              grad: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t in targets:
        a = torch.randn(rows, rank, t.in_features, generator=g) * 0.2
        b = torch.zeros(rows, t.out_features, rank) if zero_b else \
            torch.randn(rows, t.out_features, rank, generator=g) * 0.2
        out[t.name] = (a.requires_grad_(grad), b.requires_grad_(grad))
    return out


def test_targets_are_the_language_model_projections(model: Any) -> None:
    targets = find_targets(model)
    layers = model.config.get_text_config().num_hidden_layers
    assert len(targets) == 7 * layers
    assert {t.kind for t in targets} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                         "up_proj", "down_proj"}
    assert not any("visual" in t.name for t in targets)
    lora = PerSampleLoRA(model, targets)
    by_hand = sum(4 * (t.in_features + t.out_features) for t in targets)
    assert lora.generated_parameters(4) == by_hand


def test_zero_b_is_exactly_the_frozen_backbone(model: Any) -> None:
    targets = find_targets(model)
    ids = _ids(model, 2)
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with PerSampleLoRA(model, targets, scale=2.0).apply(_adapters(targets, 2, 4, 0, True)):
            adapted = model(input_ids=ids).logits
    assert torch.equal(base, adapted)


def test_each_row_runs_with_its_own_adapter(model: Any) -> None:
    targets = find_targets(model)
    ids = _ids(model, 3)
    weights = _adapters(targets, 3, 4, seed=5)
    scale = 0.5
    with torch.no_grad(), PerSampleLoRA(model, targets, scale).apply(weights):
        batched = model(input_ids=ids).logits
    for s in range(3):  # reference: a copy whose weights are W + scale * B_s A_s
        merged = copy.deepcopy(model)
        mods = dict(merged.named_modules())
        with torch.no_grad():
            for t in targets:
                a, b = weights[t.name]
                mods[t.name].weight += scale * (b[s] @ a[s])
            want = merged(input_ids=ids[s:s + 1]).logits
        torch.testing.assert_close(batched[s:s + 1], want, rtol=1e-4, atol=1e-4)
    # and the hooks are gone afterwards
    with torch.no_grad():
        after = model(input_ids=ids).logits
        assert not torch.allclose(after, batched)


def test_gradients_reach_the_adapters_only(model: Any) -> None:
    targets = find_targets(model)
    ids = _ids(model, 2)
    weights = _adapters(targets, 1, 2, seed=2, grad=True)  # one adapter broadcast to both rows
    with PerSampleLoRA(model, targets).apply(weights):
        model(input_ids=ids).logits.logsumexp(-1).mean().backward()
    assert all(a.grad is not None and b.grad is not None and b.grad.abs().sum() > 0
               for a, b in weights.values())
    assert all(p.grad is None for p in model.parameters())


def test_bad_adapter_shapes_are_named(model: Any) -> None:
    targets = find_targets(model)
    lora = PerSampleLoRA(model, targets)
    weights = _adapters(targets, 2, 4, seed=0)
    name = targets[0].name
    a, b = weights[name]
    weights[name] = (a[:, :, :-1], b)
    with pytest.raises(ValueError, match="do not fit"), lora.apply(weights):
        pass
    with pytest.raises(ValueError, match="no adapter"), lora.apply({}):
        pass
    weights = _adapters(targets, 2, 4, seed=0)
    with pytest.raises(ValueError, match="rows"), lora.apply(weights), torch.no_grad():
        model(input_ids=_ids(model, 3))
