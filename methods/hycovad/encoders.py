"""The shared spatio-temporal encoder of HyCoVAD's proposer (paper §3.2.1), in two variants.

* ``"nnformer"``: an nnFormer-style hierarchical 3D transformer (Zhou et al. 2021, adapted to
  short clips): a convolutional patch embedding (two 3x3 convs of stride 2 in space, none in
  time), stages of *local volume* self-attention blocks (attention inside windows of
  ``T x window x window`` tokens, the LV-MSA of nnFormer) separated by strided-conv patch
  merging, and *global volume* attention blocks (GV-MSA, all tokens of the stage) in the last,
  coarsest stage. A learned absolute position embedding is added after the patch embedding.
* ``"cnn_cvt"``: the SSMTL++ baseline (Barbalau et al. 2023): 3D convolution layers, then
  Convolutional vision Transformer stages (Wu et al. 2021): a strided convolutional token
  embedding and attention blocks whose query/key/value projections are depthwise 3D convs
  (keys and values subsampled 2x in space).

Both map ``(B, C, T, S, S)`` float (frames in ``[0, 1]``, ``S = 64``) to three stage maps
``(B, widths[j], T, S / 4 / 2**j, S / 4 / 2**j)`` (16, 8 and 4 pixels for ``S = 64``): time is
never downsampled. :meth:`last_shared_layer` names the weight GradNorm differentiates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES = ("nnformer", "cnn_cvt")


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, T, H, W, C)``."""
    return x.permute(0, 2, 3, 4, 1)


def _maps(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, H, W, C)`` -> ``(B, C, T, H, W)``."""
    return x.permute(0, 4, 1, 2, 3).contiguous()


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on the last axis (hidden ``ratio * dim``)."""

    def __init__(self, dim: int, ratio: float = 2.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, int(dim * ratio))
        self.fc2 = nn.Linear(int(dim * ratio), dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class VolumeAttentionBlock(nn.Module):
    """Pre-norm transformer block on ``(B, T, H, W, C)`` tokens. ``window`` > 0: attention
    inside non-overlapping ``T x window x window`` volumes (LV-MSA); ``window == 0``: over all
    tokens (GV-MSA)."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = Mlp(dim)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention over the token axis of ``(N, L, C)``."""
        n, length, c = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        y = self.norm1(x)
        win = self.window if 0 < self.window < max(h, w) else 0
        if win:
            if h % win or w % win:
                raise ValueError(f"window {win} does not divide the {h}x{w} token grid")
            y = y.reshape(b, t, h // win, win, w // win, win, c).permute(0, 2, 4, 1, 3, 5, 6)
            y = self._attend(y.reshape(-1, t * win * win, c))
            y = y.reshape(b, h // win, w // win, t, win, win, c).permute(0, 3, 1, 4, 2, 5, 6)
            y = y.reshape(b, t, h, w, c)
        else:
            y = self._attend(y.reshape(b, t * h * w, c)).reshape(b, t, h, w, c)
        x = x + y
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """Common interface: ``forward(x) -> [stage maps]``; ``last_shared_layer(stage)``."""

    stages: nn.ModuleList

    def last_shared_layer(self, stage: int) -> torch.Tensor:
        """The weight of the last layer of ``stage`` (every head reading a stage ``>= stage`` is
        differentiable through it): GradNorm's ``W``."""
        last = [m for m in self.stages[stage].modules() if isinstance(m, nn.Linear | nn.Conv3d)]
        return last[-1].weight


class NNFormerEncoder(Encoder):
    """nnFormer-style encoder (module docstring). ``depths[j]`` blocks in stage ``j``: local
    windows in all but the last stage, global attention in the last."""

    def __init__(self, in_channels: int = 3, frames: int = 5, size: int = 64,
                 widths: tuple[int, ...] = (16, 32, 64), depths: tuple[int, ...] = (1, 1, 1),
                 heads: tuple[int, ...] = (2, 4, 4), window: int = 4) -> None:
        super().__init__()
        c0 = widths[0]
        self.embed = nn.Sequential(
            nn.Conv3d(in_channels, c0 // 2, (1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.GELU(),
            nn.Conv3d(c0 // 2, c0, (1, 3, 3), (1, 2, 2), (0, 1, 1)))
        self.embed_norm = nn.LayerNorm(c0)
        self.pos = nn.Parameter(torch.zeros(1, frames, size // 4, size // 4, c0))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.merges = nn.ModuleList()
        stages = []
        for j, (c, d, nh) in enumerate(zip(widths, depths, heads, strict=True)):
            if j > 0:
                self.merges.append(nn.Conv3d(widths[j - 1], c, (1, 2, 2), (1, 2, 2)))
            win = 0 if j == len(widths) - 1 else window
            stages.append(nn.Sequential(*[VolumeAttentionBlock(c, nh, win) for _ in range(d)]))
        self.stages = nn.ModuleList(stages)
        self.norms = nn.ModuleList([nn.LayerNorm(c) for c in widths])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, T, S, S)`` -> stage maps ``[(B, widths[j], T, S/4/2**j, S/4/2**j)]``."""
        y = self.embed_norm(_tokens(self.embed(x))) + self.pos
        out = []
        for j, stage in enumerate(self.stages):
            if j > 0:
                y = _tokens(self.merges[j - 1](_maps(y)))
            y = stage(y)
            out.append(_maps(self.norms[j](y)))
        return out


class ConvAttentionBlock(nn.Module):
    """CvT block on ``(B, C, T, H, W)`` maps: pre-norm attention whose q/k/v projections are
    depthwise 3x3x3 convs (k and v with spatial stride ``kv_stride``), then an MLP; both
    residual."""

    def __init__(self, dim: int, heads: int, kv_stride: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        kv = (1, kv_stride, kv_stride)
        self.q = nn.Conv3d(dim, dim, 3, 1, 1, groups=dim)
        self.k = nn.Conv3d(dim, dim, 3, kv, 1, groups=dim)
        self.v = nn.Conv3d(dim, dim, 3, kv, 1, groups=dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = _maps(self.norm1(_tokens(x)))
        q, k, v = self.q(y), self.k(y), self.v(y)
        wq, wk, wv = self.qkv.weight.chunk(3)
        bq, bk, bv = self.qkv.bias.chunk(3)

        def heads(m: torch.Tensor, wt: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            tok = F.linear(m.flatten(2).transpose(1, 2), wt, bias)
            return tok.reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)

        att = F.scaled_dot_product_attention(heads(q, wq, bq), heads(k, wk, bk), heads(v, wv, bv))
        att = self.proj(att.transpose(1, 2).reshape(b, t * h * w, c))
        tok = x.flatten(2).transpose(1, 2) + att
        tok = tok + self.mlp(self.norm2(tok))
        return tok.transpose(1, 2).reshape(b, c, t, h, w)


class CnnCvtEncoder(Encoder):
    """SSMTL++-style CNN + CvT encoder (module docstring): stage 0 = two strided 3D conv layers
    and a 3x3x3 conv; stages ``j > 0`` = a convolutional token embedding (3D conv, spatial
    stride 2) and ``depths[j]`` CvT blocks (keys/values subsampled 2x where the map is wider
    than 4 tokens)."""

    def __init__(self, in_channels: int = 3, frames: int = 5, size: int = 64,
                 widths: tuple[int, ...] = (16, 32, 64), depths: tuple[int, ...] = (1, 1, 1),
                 heads: tuple[int, ...] = (2, 4, 4), window: int = 4) -> None:
        super().__init__()
        del frames, window  # same signature as NNFormerEncoder
        c0 = widths[0]
        stages: list[nn.Module] = [nn.Sequential(
            nn.Conv3d(in_channels, c0 // 2, 3, (1, 2, 2), 1), nn.BatchNorm3d(c0 // 2), nn.GELU(),
            nn.Conv3d(c0 // 2, c0, 3, (1, 2, 2), 1), nn.BatchNorm3d(c0), nn.GELU(),
            nn.Conv3d(c0, c0, 3, 1, 1))]
        for j in range(1, len(widths)):
            embed = nn.Conv3d(widths[j - 1], widths[j], (1, 3, 3), (1, 2, 2), (0, 1, 1))
            kv = 2 if size // 4 // 2**j > 4 else 1
            blocks = [ConvAttentionBlock(widths[j], heads[j], kv) for _ in range(depths[j])]
            stages.append(nn.Sequential(embed, *blocks))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, T, S, S)`` -> stage maps ``[(B, widths[j], T, S/4/2**j, S/4/2**j)]``."""
        out = []
        y = x
        for stage in self.stages:
            y = stage(y)
            out.append(y)
        return out


def make_encoder(name: str, in_channels: int, frames: int, size: int, widths: tuple[int, ...],
                 depths: tuple[int, ...], heads: tuple[int, ...], window: int) -> Encoder:
    """The encoder ``name`` (one of :data:`BACKBONES`)."""
    if name == "nnformer":
        return NNFormerEncoder(in_channels, frames, size, widths, depths, heads, window)
    if name == "cnn_cvt":
        return CnnCvtEncoder(in_channels, frames, size, widths, depths, heads, window)
    raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
