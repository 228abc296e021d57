"""Per-sample LoRA on a frozen backbone, functionally: no weight is copied or changed.

While :meth:`PerSampleLoRA.apply` is active, each targeted ``nn.Linear`` of the language model
returns ``W x + b + scale * B_s (A_s x)`` where ``(A_s, B_s)`` are the adapter of the batch row
``s`` the input belongs to. ``A`` has shape ``(S, r, in_features)`` and ``B`` ``(S, out_features,
r)`` for ``S`` batch rows (``S == 1`` broadcasts one adapter to every row), so every sample of
one batch runs with its own generated weights, and gradients reach ``A`` and ``B`` (hence the
generator that produced them) while the backbone's parameters are untouched. Rows are the
leading dimension of the Linear's input, ``(S, L, in_features)`` (``(S, in_features)`` also
works); with sampling, repeat each prompt's adapter ``G`` times (``repeat_interleave``).

Targets are the language model's projections of every decoder layer: ``q_proj``, ``k_proj``,
``v_proj``, ``o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``, fused ``qkv_proj`` /
``gate_up_proj`` where a backbone has them, and InternLM2's ``wqkv`` / ``wo`` / ``w1`` / ``w2`` /
``w3`` (InternVL2's language model); the vision tower is never adapted.

:func:`stack_adapters` turns a list of per-request adapters (``{module: (A (r, in), B (out,
r))}``, as :class:`~harness.engines.base.LoRARef` tensors hold them, or ``None`` for no
adapter) into the ``(S, R, in)`` / ``(S, out, R)`` stacks :meth:`PerSampleLoRA.apply` takes:
ranks are zero-padded to the largest (``B A`` is unchanged) and each adapter's scale is folded
into its ``B``. The ``hf`` engine serves per-request LoRA this way, so one decoding batch mixes
adapters freely.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: projection names adapted by default (fused variants included where the backbone has them)
DEFAULT_KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                 "qkv_proj", "gate_up_proj", "wqkv", "wo", "w1", "w2", "w3")
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:[\w.]+\.)?(\w+)$")
_VISION = ("visual", "vision")


@dataclass(frozen=True)
class LoraTarget:
    """One adapted Linear: its module path, decoder layer (0-based), projection kind and
    shape."""

    name: str
    layer: int
    kind: str
    in_features: int
    out_features: int


def find_targets(model: nn.Module, kinds: tuple[str, ...] = DEFAULT_KINDS) -> list[LoraTarget]:
    """The language model's Linear layers of the given ``kinds``, in layer then module order.

    Raises:
        ValueError: no target found (not a decoder-layer model, or ``kinds`` match nothing).
    """
    out = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or any(v in name for v in _VISION):
            continue
        m = _LAYER.search(name)
        if m and m.group(2) in kinds:
            out.append(LoraTarget(name, int(m.group(1)), m.group(2), mod.in_features,
                                  mod.out_features))
    if not out:
        raise ValueError(f"no language-model Linear named {kinds} in {type(model).__name__}")
    return out


class PerSampleLoRA:
    """Installs per-sample LoRA deltas on ``targets`` of ``model`` while :meth:`apply` runs.

    Args:
        model: the frozen backbone (its parameters are neither copied nor modified).
        targets: from :func:`find_targets`.
        scale: the LoRA scaling ``alpha / r`` applied to every delta.
    """

    def __init__(self, model: nn.Module, targets: list[LoraTarget], scale: float = 1.0) -> None:
        self.model = model
        self.targets = targets
        self.scale = scale
        modules = dict(model.named_modules())
        self._modules = {t.name: modules[t.name] for t in targets}

    def _hook(self, name: str, a: torch.Tensor, b: torch.Tensor) -> Any:
        scale = self.scale

        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
                 ) -> torch.Tensor:
            x = inputs[0]
            flat = x.dim() == 2
            xs = x.unsqueeze(1) if flat else x
            rows = xs.shape[0]
            if a.shape[0] not in (1, rows):
                raise ValueError(f"{name}: adapter for {a.shape[0]} rows, input has {rows}")
            aa, bb = a.to(xs.dtype), b.to(xs.dtype)
            h = torch.einsum("sli,sri->slr", xs, aa.expand(rows, -1, -1))
            delta = torch.einsum("slr,sor->slo", h, bb.expand(rows, -1, -1)) * scale
            return output + (delta.squeeze(1) if flat else delta)

        return hook

    @contextmanager
    def apply(self, weights: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
        """Run the model with ``weights[name] = (A (S, r, in), B (S, out, r))`` for every target;
        the hooks are removed on exit, even after an error."""
        missing = [t.name for t in self.targets if t.name not in weights]
        if missing:
            raise ValueError(f"no adapter for {len(missing)} target(s), e.g. {missing[0]}")
        for t in self.targets:
            a, b = weights[t.name]
            if (a.dim() != 3 or b.dim() != 3 or a.shape[2] != t.in_features
                    or b.shape[1] != t.out_features or a.shape[1] != b.shape[2]
                    or a.shape[0] != b.shape[0]):
                raise ValueError(f"{t.name}: A {tuple(a.shape)} / B {tuple(b.shape)} do not fit "
                                 f"(S, r, {t.in_features}) / (S, {t.out_features}, r)")
        handles = [self._modules[t.name].register_forward_hook(self._hook(t.name, *weights[t.name]))
                   for t in self.targets]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def generated_parameters(self, rank: int) -> int:
        """LoRA parameters generated per input at ``rank``: ``sum r * (in + out)``."""
        return sum(rank * (t.in_features + t.out_features) for t in self.targets)


def stack_adapters(
    adapters: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None],
    targets: Sequence[LoraTarget], scales: Sequence[float] | None = None,
    device: torch.device | None = None, dtype: torch.dtype = torch.float32,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stack ``S`` per-row adapters into :meth:`PerSampleLoRA.apply` weights.

    Args:
        adapters: per row, ``{module: (A (r, in), B (out, r))}`` or ``None`` (the frozen
            backbone). A module an adapter does not name gets no delta for that row.
        targets: the modules to install (every module any adapter names must be one).
        scales: per row, the LoRA scale ``alpha / r`` folded into ``B`` (default 1).

    Returns:
        ``{target name: (A (S, R, in), B (S, out, R))}`` with ``R`` the largest rank (at least
        1); zero-padded ranks and absent modules contribute exactly nothing.

    Raises:
        ValueError: an adapter names a module that is not a target, or shapes do not fit.
    """
    by_name = {t.name: t for t in targets}
    rank = 1
    for i, ad in enumerate(adapters):
        for name, (a, b) in (ad or {}).items():
            t = by_name.get(name)
            if t is None:
                raise ValueError(f"adapter of row {i}: {name!r} is not an adaptable module of "
                                 f"this model (e.g. {targets[0].name!r})")
            if (a.dim() != 2 or b.dim() != 2 or a.shape[1] != t.in_features
                    or b.shape[0] != t.out_features or a.shape[0] != b.shape[1]):
                raise ValueError(f"adapter of row {i}: {name}: A {tuple(a.shape)} / B "
                                 f"{tuple(b.shape)} do not fit (r, {t.in_features}) / "
                                 f"({t.out_features}, r)")
            rank = max(rank, int(a.shape[0]))
    s = len(adapters)
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for t in targets:
        a_all = torch.zeros(s, rank, t.in_features, device=device, dtype=dtype)
        b_all = torch.zeros(s, t.out_features, rank, device=device, dtype=dtype)
        for i, ad in enumerate(adapters):
            if not ad or t.name not in ad:
                continue
            a, b = ad[t.name]
            r = a.shape[0]
            scale = 1.0 if scales is None else float(scales[i])
            a_all[i, :r] = a.to(device=device, dtype=dtype)
            b_all[i, :, :r] = b.to(device=device, dtype=dtype) * scale
        out[t.name] = (a_all, b_all)
    return out
