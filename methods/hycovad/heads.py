"""The four proxy-task heads of HyCoVAD's proposer (paper §3.2.2-§3.2.5).

All heads read the encoder's stage maps ``maps[j]`` ``(B, widths[j], T, 16 / 2**j, 16 / 2**j)``
(:mod:`methods.hycovad.encoders`, for 64x64 inputs). Per-item losses (``(B,)`` tensors, no
reduction) are pure functions; training averages them over the batch.

* T2 middle frame (:class:`MiddleDecoder`): the *input* is the sequence with its middle frame
  zeroed (:func:`mask_middle`); the decoder reads the time-pooled deepest map, passes every
  spatial feature vector through a MemAE memory (:func:`memory_address`), and upsamples to
  ``64 x 64``, fusing the time-pooled (temporal mean) maps of the shallower stages at matching
  resolution (temporal skip connections). Loss: mean absolute (``"l1"``, Eq. 1) or squared
  (``"l2"``, §4.2) error per pixel, frames in ``[0, 1]``.
* T1 motion irregularity (:class:`IrregularityHead`): two residual 3D conv blocks on an
  intermediate map, flatten, two linear layers -> 2 logits (class 0 = regular, 1 = irregular);
  cross-entropy (Eq. 2).
* T3 jigsaw (:class:`JigsawHead`): every frame of the sequence cut into 2x2 patches and
  permuted by one permutation for all frames (:func:`jigsaw_shuffle`); conv block, adaptive
  average pooling to 2x2 cells, a shared MLP -> logits ``(B, 4 cells, 4 positions)``; loss the
  mean cross-entropy over the 4 cells (Eq. 3).
* T4 SocialGRU (:class:`SocialGRU`): predicts an object's current position from its 7 past
  ones, its neighbours' and its appearance features; squared error (Eq. 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

REGULAR, IRREGULAR = 0, 1


def memory_address(z: torch.Tensor, memory: torch.Tensor, shrink: float) -> torch.Tensor:
    """MemAE addressing weights ``(N, slots)`` of queries ``z`` ``(N, D)`` over ``memory``
    ``(slots, D)``: ``w = softmax(z M^T)``, then hard shrinkage ``w' = relu(w - shrink) * w /
    (|w - shrink| + 1e-12)`` (weights at or below ``shrink`` become 0) and L1 renormalisation
    ``w' / sum(w')``. ``shrink <= 0``: no shrinkage."""
    w = torch.softmax(z @ memory.t(), dim=-1)
    if shrink > 0:
        w = F.relu(w - shrink) * w / ((w - shrink).abs() + 1e-12)
        w = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return w


def memory_entropy(w: torch.Tensor) -> torch.Tensor:
    """MemAE's sparsity term: mean over rows of ``sum_k -w_k log w_k`` (``0 log 0 = 0``)."""
    return -(w * torch.log(w.clamp_min(1e-12))).sum(dim=-1).mean()


def mask_middle(seq: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> a copy with frame ``T // 2`` set to 0 (T2's input)."""
    out = seq.clone()
    out[:, :, seq.shape[2] // 2] = 0
    return out


def middle_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Per-item reconstruction error ``(B,)``: mean over ``(C, H, W)`` of ``|pred - target|``
    (``"l1"``) or ``(pred - target)**2`` (``"l2"``)."""
    diff = pred - target
    err = diff.abs() if kind == "l1" else diff * diff
    return err.flatten(1).mean(dim=1)


def jigsaw_shuffle(seq: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:
    """Permute the 2x2 patches of every frame: ``seq`` ``(B, C, T, H, W)`` (even ``H, W``),
    ``perms`` ``(B, 4)`` -> cell ``c`` (row-major: 0 top-left, 1 top-right, 2 bottom-left,
    3 bottom-right) of the output holds patch ``perms[b, c]`` of the input, in every frame. The
    label of cell ``c`` is ``perms[b, c]``."""
    b, c, t, h, w = seq.shape
    patches = seq.reshape(b, c, t, 2, h // 2, 2, w // 2).permute(0, 3, 5, 1, 2, 4, 6)
    patches = patches.reshape(b, 4, c, t, h // 2, w // 2)
    out = patches[torch.arange(b)[:, None], perms]
    out = out.reshape(b, 2, 2, c, t, h // 2, w // 2).permute(0, 3, 4, 1, 5, 2, 6)
    return out.reshape(b, c, t, h, w)


def jigsaw_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-item Eq. 3: ``logits`` ``(B, 4, 4)``, ``labels`` ``(B, 4)`` -> ``(B,)`` mean over the
    4 cells of ``-log softmax(logits)[cell, label]``."""
    ce = F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1), reduction="none")
    return ce.reshape(labels.shape).mean(dim=1)


def irregularity_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-item Eq. 2: ``logits`` ``(B, 2)``, ``labels`` ``(B,)`` (0 regular) -> ``(B,)``."""
    return F.cross_entropy(logits, labels, reduction="none")


def social_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-object Eq. 4 term ``||y - y_hat||^2``: ``(B, 2)`` positions -> ``(B,)``."""
    return ((pred - target) ** 2).sum(dim=-1)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())


class MiddleDecoder(nn.Module):
    """T2 decoder: time-pooled deepest map -> MemAE memory -> upsampling with fused temporal
    skips (to the stage-0 resolution), two 2x upsampling conv blocks of ``widths[0] // 2``
    channels, a 3x3 conv -> ``(B, out_channels, 64, 64)`` in ``[0, 1]`` (sigmoid)."""

    def __init__(self, widths: tuple[int, ...], out_channels: int = 3, slots: int = 50,
                 shrink: float = 0.02) -> None:
        super().__init__()
        self.shrink = shrink
        deep = widths[-1]
        self.memory = nn.Parameter(torch.randn(slots, deep) / deep ** 0.5)
        self.ups = nn.ModuleList()
        self.fuses = nn.ModuleList()
        for j in range(len(widths) - 1, 0, -1):  # deepest -> stage 1: fuse with stage j - 1
            self.ups.append(_conv_block(widths[j], widths[j - 1]))
            self.fuses.append(_conv_block(2 * widths[j - 1], widths[j - 1]))
        c0, c1 = widths[0], max(widths[0] // 2, out_channels)
        self.refine = nn.Sequential(_conv_block(c0, c1), _conv_block(c1, c1))
        self.out = nn.Conv2d(c1, out_channels, 3, 1, 1)
        self.last_weights: torch.Tensor | None = None

    def unfreeze_groups(self) -> list[nn.Module | nn.Parameter]:
        """Layer groups from the output inward (§4.2 phase 1)."""
        groups: list[nn.Module | nn.Parameter] = [self.out, self.refine]
        for up, fuse in zip(reversed(self.ups), reversed(self.fuses), strict=True):
            groups += [fuse, up]
        return [*groups, self.memory]

    def forward(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``(prediction (B, C, 4 * H_0, 4 * W_0), addressing weights (B * H * W, slots))``."""
        z = maps[-1].mean(dim=2)
        b, c, h, w = z.shape
        q = z.permute(0, 2, 3, 1).reshape(-1, c)
        weights = memory_address(q, self.memory, self.shrink)
        y = (weights @ self.memory).reshape(b, h, w, c).permute(0, 3, 1, 2)
        for k, (up, fuse) in enumerate(zip(self.ups, self.fuses, strict=True)):
            skip = maps[len(maps) - 2 - k].mean(dim=2)
            y = up(F.interpolate(y, size=skip.shape[-2:], mode="nearest"))
            y = fuse(torch.cat([y, skip], dim=1))
        for block in self.refine:
            y = block(F.interpolate(y, scale_factor=2, mode="nearest"))
        return torch.sigmoid(self.out(y)), weights


class _ResBlock3d(nn.Module):
    """``relu(x' + conv(relu(conv(x))))`` where ``x'`` is ``x`` (or its strided 1x1 projection
    when ``stride > 1``); spatial stride only."""

    def __init__(self, dim: int, stride: int = 1) -> None:
        super().__init__()
        s = (1, stride, stride)
        self.conv1 = nn.Conv3d(dim, dim, 3, s, 1)
        self.conv2 = nn.Conv3d(dim, dim, 3, 1, 1)
        self.skip = nn.Conv3d(dim, dim, 1, s) if stride > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.skip(x) + self.conv2(F.relu(self.conv1(x))))


class IrregularityHead(nn.Module):
    """T1: two residual conv blocks (the second with spatial stride 2), flatten, two linear
    layers -> ``(B, 2)`` logits. Input ``(B, dim, T, S, S)``."""

    def __init__(self, dim: int, frames: int, side: int, hidden: int = 64) -> None:
        super().__init__()
        self.block1, self.block2 = _ResBlock3d(dim), _ResBlock3d(dim, stride=2)
        flat = dim * frames * ((side + 1) // 2) ** 2
        self.fc1, self.fc2 = nn.Linear(flat, hidden), nn.Linear(hidden, 2)

    def unfreeze_groups(self) -> list[nn.Module | nn.Parameter]:
        return [self.fc2, self.fc1, self.block2, self.block1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block2(self.block1(x)).flatten(1)
        return self.fc2(F.relu(self.fc1(y)))


class JigsawHead(nn.Module):
    """T3: 3D conv block, adaptive average pooling to ``1 x 2 x 2`` cells, shared MLP (linear,
    ReLU, dropout, linear) per cell -> ``(B, 4 cells row-major, 4 positions)`` logits."""

    def __init__(self, dim: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(dim, dim, 3, 1, 1), nn.BatchNorm3d(dim), nn.ReLU())
        self.fc1, self.drop, self.fc2 = nn.Linear(dim, hidden), nn.Dropout(dropout), \
            nn.Linear(hidden, 4)

    def unfreeze_groups(self) -> list[nn.Module | nn.Parameter]:
        return [self.fc2, self.fc1, self.conv]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool3d(self.conv(x), (1, 2, 2)).flatten(2).transpose(1, 2)
        return self.fc2(self.drop(F.relu(self.fc1(cells))))


class SocialGRU(nn.Module):
    """T4: GRU encoder-decoder with interleaved attention over neighbours.

    Step inputs (per agent, ``P`` past steps): the position relative to the *target's* last
    past position and the displacement from the previous step (0 at the first), both times
    ``scale``, embedded by a linear layer + ReLU. Neighbours run the encoder GRU cell with a zero
    attention context; at every step the target's cell also receives the attention-weighted sum
    of the neighbours' previous hidden states (query: its own previous hidden state; absent
    neighbours masked; no neighbour -> zero context). The final hidden state is concatenated
    with the projected object features; a GRU decoder cell initialised from it and fed the last
    step's input predicts the displacement to the current position.
    """

    def __init__(self, feature_dim: int, hidden: int = 32, embed: int = 16,
                 scale: float = 100.0) -> None:
        super().__init__()
        self.hidden, self.scale = hidden, scale
        self.embed = nn.Linear(4, embed)
        self.cell = nn.GRUCell(embed + hidden, hidden)
        self.query, self.key = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.feature = nn.Linear(feature_dim, hidden)
        self.init = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.GRUCell(embed, hidden)
        self.head = nn.Linear(hidden, 2)

    def unfreeze_groups(self) -> list[nn.Module | nn.Parameter]:
        return [self.head, self.decoder, self.init, self.feature,
                nn.ModuleList([self.query, self.key, self.value]), self.cell, self.embed]

    def _steps(self, tracks: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
        """``tracks`` ``(..., P, 2)``, ``origin`` broadcastable ``(..., 1, 2)`` -> embedded step
        inputs ``(..., P, embed)``."""
        disp = torch.diff(tracks, dim=-2, prepend=tracks[..., :1, :])
        x = torch.cat([tracks - origin, disp], dim=-1) * self.scale
        return F.relu(self.embed(x))

    def forward(self, past: torch.Tensor, neighbours: torch.Tensor, mask: torch.Tensor,
                features: torch.Tensor) -> torch.Tensor:
        """``past`` ``(B, P, 2)``, ``neighbours`` ``(B, K, P, 2)``, ``mask`` ``(B, K)`` bool,
        ``features`` ``(B, D)`` -> predicted current position ``(B, 2)`` (same units as
        ``past``)."""
        b, p, _ = past.shape
        k = neighbours.shape[1]
        origin = past[:, -1:, :]
        xt = self._steps(past, origin)
        xn = self._steps(neighbours, origin[:, None])
        h = past.new_zeros(b, self.hidden)
        hn = past.new_zeros(b * k, self.hidden)
        zeros = past.new_zeros(b * k, self.hidden)
        for step in range(p):
            if k > 0:
                keys = self.key(hn).reshape(b, k, -1)
                scores = (keys @ self.query(h)[:, :, None]).squeeze(-1) / self.hidden ** 0.5
                scores = scores.masked_fill(~mask, float("-inf"))
                att = torch.nan_to_num(torch.softmax(scores, dim=-1)) * mask
                ctx = (att[:, :, None] * self.value(hn).reshape(b, k, -1)).sum(dim=1)
                hn = self.cell(torch.cat([xn[:, :, step].reshape(b * k, -1), zeros], -1), hn)
            else:
                ctx = past.new_zeros(b, self.hidden)
            h = self.cell(torch.cat([xt[:, step], ctx], dim=-1), h)
        h0 = torch.tanh(self.init(torch.cat([h, F.relu(self.feature(features))], dim=-1)))
        hd = self.decoder(xt[:, -1], h0)
        return origin[:, 0] + self.head(hd) / self.scale
