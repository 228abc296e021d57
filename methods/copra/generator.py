"""COPRA's parameter generator: visual tokens in, one LoRA (A, B) per targeted Linear out.

Design (COPRA §3 and Appendix A.2; details the paper leaves open are ours and written here):

* **Parameter tokens.** Every target Linear (:class:`~harness.models.lora.LoraTarget`) of
  every decoder layer gets ``2 r`` tokens: ``r`` emit the rows of ``A`` (``r x in``), ``r`` the
  columns of ``B`` (``out x r``). A token's embedding is a learnable *structural* code (decoder
  layer + projection kind + A/B role + rank index) plus, by default, its entry of the learnable
  **global latent prior** ``P`` (``n_tokens x width``), the dataset-level component the paper
  adds to the input-conditioned residual. ``use_prior=False`` is the paper's "without the
  global latent prior" ablation: tokens start from the structural code only.
* **Conditioning.** The visual input is the backbone's frozen visual tokens of the conditioning
  frames (*appearance* tokens) followed by their temporal differences at the same spatial
  position between consecutive temporal groups (*motion* tokens; :class:`~methods.copra.model.
  CopraModel` builds both), each projected by a per-token MLP and tagged with a learnable type
  embedding. Cross-attention pools over an unordered set, so it cannot form differences between
  particular tokens itself; the paper leaves the encoder unspecified, and the motion tokens are
  our choice, made because a model's dynamics are what several anomaly types are about.
* **Blocks** (``depth``, default half the backbone's decoder layers), each pre-norm residual:
  intra-layer self-attention (tokens of the same decoder layer), inter-layer self-attention
  (tokens of the same kind/role/index slot across layers), cross-attention to the projected
  visual tokens, and an MLP.
* **Heads.** One light MLP per (kind, role, size): ``width -> width -> in_features`` for A rows,
  ``-> out_features`` for B columns. The last layer of every B head starts at exactly zero,
  so an untrained generator emits ``B = 0`` and the adapted model *is* the frozen backbone.
  ``A``'s rows are emitted in units of ``1 / sqrt(in_features)`` (the scale of LoRA's usual
  Kaiming initialisation of ``A``), so ``A x`` stays of the order of one hidden unit whatever the
  backbone's width.
* The LoRA scale is ``alpha / r`` (``alpha`` defaults to ``r``: scale 1).

Shapes: visual tokens ``(S, V, visual_dim)`` with an optional ``(S, V)`` bool mask (True =
real token) for ``S`` inputs; the output maps each target's name to ``A (S, r, in)`` and
``B (S, out, r)``, ready for :class:`~harness.models.lora.PerSampleLoRA`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.models.lora import LoraTarget


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator settings (the paper: width 512, depth half the backbone's layers; its LoRA
    rank is not legible in our copy, hence a setting)."""

    rank: int = 8
    width: int = 512
    depth: int | None = None
    heads: int = 8
    use_prior: bool = True
    lora_alpha: float | None = None

    def scale(self) -> float:
        return (self.lora_alpha if self.lora_alpha is not None else self.rank) / self.rank


def slot_masks(layers: torch.Tensor, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``(n, n)`` attention masks of the factorised self-attention, True = *blocked*
    (``nn.MultiheadAttention``'s convention): intra-layer attends within the same decoder layer,
    inter-layer within the same slot across layers."""
    intra = layers[:, None] != layers[None, :]
    inter = slots[:, None] != slots[None, :]
    return intra, inter


class _Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.n1, self.n2, self.n3, self.n4 = (nn.LayerNorm(width) for _ in range(4))
        self.intra = nn.MultiheadAttention(width, heads, batch_first=True)
        self.inter = nn.MultiheadAttention(width, heads, batch_first=True)
        self.cross = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, vis: torch.Tensor, vis_pad: torch.Tensor | None,
                intra: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.intra(h, h, h, attn_mask=intra, need_weights=False)[0]
        h = self.n2(x)
        x = x + self.inter(h, h, h, attn_mask=inter, need_weights=False)[0]
        h = self.n3(x)
        x = x + self.cross(h, vis, vis, key_padding_mask=vis_pad, need_weights=False)[0]
        return x + self.mlp(self.n4(x))


class LoraGenerator(nn.Module):
    """Visual tokens -> per-input LoRA weights for ``targets`` (see module docstring)."""

    def __init__(self, targets: list[LoraTarget], visual_dim: int, cfg: GeneratorConfig,
                 backbone_layers: int | None = None) -> None:
        super().__init__()
        if cfg.rank < 1 or cfg.width % cfg.heads:
            raise ValueError(f"COPRA generator: rank >= 1 and width divisible by heads "
                             f"(rank {cfg.rank}, width {cfg.width}, heads {cfg.heads})")
        self.cfg = cfg
        self.targets = list(targets)
        n_layers = backbone_layers or (max(t.layer for t in targets) + 1)
        depth = cfg.depth if cfg.depth is not None else max(1, n_layers // 2)
        kinds = sorted({t.kind for t in targets})
        self._heads_key = [f"{t.kind}:{t.in_features}x{t.out_features}" for t in targets]
        r, w = cfg.rank, cfg.width
        # token t: target j = t // (2r), role = (t % 2r) // r (0 = A row, 1 = B column),
        # rank index = t % r
        n = len(targets) * 2 * r
        self._n = n
        j = torch.arange(n) // (2 * r)
        role = (torch.arange(n) % (2 * r)) // r
        idx = torch.arange(n) % r
        layer = torch.tensor([targets[k].layer for k in j.tolist()])
        kind = torch.tensor([kinds.index(targets[k].kind) for k in j.tolist()])
        slot = (kind * 2 + role) * r + idx
        self.register_buffer("_layer", layer, persistent=False)
        self.register_buffer("_kind", kind, persistent=False)
        self.register_buffer("_role", role, persistent=False)
        self.register_buffer("_idx", idx, persistent=False)
        intra, inter = slot_masks(layer, slot)
        self.register_buffer("_intra", intra, persistent=False)
        self.register_buffer("_inter", inter, persistent=False)
        self.layer_emb = nn.Embedding(n_layers, w)
        self.kind_emb = nn.Embedding(len(kinds), w)
        self.role_emb = nn.Embedding(2, w)
        self.idx_emb = nn.Embedding(r, w)
        for emb in (self.layer_emb, self.kind_emb, self.role_emb, self.idx_emb):
            nn.init.normal_(emb.weight, std=0.02)
        self.prior = nn.Parameter(torch.randn(n, w) * 0.02) if cfg.use_prior else None
        self.visual_proj = nn.Sequential(nn.Linear(visual_dim, w), nn.GELU(), nn.Linear(w, w),
                                         nn.LayerNorm(w))
        self.type_emb = nn.Embedding(2, w)
        nn.init.normal_(self.type_emb.weight, std=0.02)
        self.blocks = nn.ModuleList(_Block(w, cfg.heads) for _ in range(depth))
        self.out_norm = nn.LayerNorm(w)
        heads: dict[str, nn.Module] = {}
        for t, key in zip(targets, self._heads_key, strict=True):
            if f"A|{key}" in heads:
                continue
            heads[f"A|{key}"] = nn.Sequential(nn.Linear(w, w), nn.GELU(),
                                              nn.Linear(w, t.in_features))
            b_out = nn.Linear(w, t.out_features)
            nn.init.zeros_(b_out.weight)
            nn.init.zeros_(b_out.bias)
            heads[f"B|{key}"] = nn.Sequential(nn.Linear(w, w), nn.GELU(), b_out)
        self.heads = nn.ModuleDict(heads)

    @property
    def n_tokens(self) -> int:
        return self._n

    def parameter_count(self) -> int:
        """Trainable parameters of the generator."""
        return sum(p.numel() for p in self.parameters())

    def tokens(self) -> torch.Tensor:
        """``(n_tokens, width)`` initial parameter tokens (structure + prior)."""
        x = (self.layer_emb(self._layer) + self.kind_emb(self._kind) + self.role_emb(self._role)
             + self.idx_emb(self._idx))
        return x + self.prior if self.prior is not None else x

    def forward(self, visual: torch.Tensor, visual_mask: torch.Tensor | None = None,
                token_types: torch.Tensor | None = None,
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """LoRA weights per target for each of the ``S`` inputs (module docstring).
        ``token_types`` ``(S, V)``: 0 = appearance token, 1 = motion token (default all 0)."""
        if visual.dim() != 3:
            raise ValueError(f"visual tokens must be (S, V, dim), got {tuple(visual.shape)}")
        s = visual.shape[0]
        vis = self.visual_proj(visual.to(self.out_norm.weight.dtype))
        if token_types is not None:
            vis = vis + self.type_emb(token_types.long())
        pad = None if visual_mask is None else ~visual_mask.bool()
        x = self.tokens().unsqueeze(0).expand(s, -1, -1)
        for block in self.blocks:
            x = block(x, vis, pad, self._intra, self._inter)
        x = self.out_norm(x)
        r = self.cfg.rank
        per_target = x.view(s, len(self.targets), 2, r, -1)  # (S, targets, A/B, r, width)
        out = {}
        for j, (t, key) in enumerate(zip(self.targets, self._heads_key, strict=True)):
            a = self.heads[f"A|{key}"](per_target[:, j, 0]) * t.in_features ** -0.5  # (S,r,in)
            b = self.heads[f"B|{key}"](per_target[:, j, 1]).transpose(1, 2)  # (S, out, r)
            out[t.name] = (a, b)
        return out
