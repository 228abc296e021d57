"""HyCoVAD's stage 1: the multi-task self-supervised proposer (paper §3.1-3.2, §4.3).

A shared encoder (:mod:`.encoders`) feeds the enabled proxy-task heads (:mod:`.heads`): T1
``"irregularity"``, T2 ``"middle"``, T3 ``"jigsaw"``, T4 ``"social"``. Inputs are crop sequences
of detected objects and/or whole frames (:mod:`.objects`), ``(B, 3, 2t + 1, 64, 64)`` in
``[0, 1]``.

Scoring (:meth:`Proposer.score`): every item (an object of a target frame, or the whole frame)
gets the unweighted inference loss of each enabled task:

* ``middle``: L1 (or L2, ``middle_loss``) error of the middle frame predicted from the
  sequence with its middle frame zeroed;
* ``irregularity``: cross-entropy of the unmodified sequence against the "regular" class;
* ``jigsaw``: mean cross-entropy of the identity arrangement on the unshuffled sequence;
* ``social``: squared error (positions in units of ``1 / position_scale`` of the frame size,
  i.e. percent of the frame with the default 100) of the current position predicted from the 7
  past ones; 0 for objects without a complete track and for frame rows.

The item's total is ``sum_i w_i L_i`` with the GradNorm weights :attr:`Proposer.weights`; a
frame's total is the maximum over its objects (object level; 0 without objects), the frame
row's total (frame level), or the larger of the two (``"both"``). The paper flags frames whose
total exceeds 0.3.

Checkpoint directory: ``proposer.pt`` (the network's state dict) and ``hycovad.json``
(``format`` = :data:`FORMAT`, ``config``, ``weights``, ``calibration``, ``extra``).
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.training import CheckpointError
from harness.video import Frames
from methods.hycovad.detect import Detector, background_indices, make_detector
from methods.hycovad.encoders import BACKBONES, make_encoder
from methods.hycovad.heads import (
    REGULAR,
    IrregularityHead,
    JigsawHead,
    MiddleDecoder,
    SocialGRU,
    irregularity_loss,
    jigsaw_loss,
    jigsaw_shuffle,
    mask_middle,
    memory_entropy,
    middle_loss,
    social_loss,
)
from methods.hycovad.objects import (
    Items,
    ItemSpec,
    collect_items,
    context_indices,
    history_indices,
    item_sequences,
    sequence_offsets,
)

TASK_NAMES = ("irregularity", "middle", "jigsaw", "social")
LEVELS = ("object", "frame", "both")
FORMAT = "vad-eval/hycovad-proposer-v1"
IDENTITY = (0, 1, 2, 3)


@dataclass
class ProposerConfig:
    """The proposer's architecture and inputs (defaults: a tiny CPU-sized network)."""

    backbone: str = "nnformer"  # "nnformer" | "cnn_cvt"
    tasks: tuple[str, ...] = TASK_NAMES
    level: str = "object"  # "object" | "frame" | "both"
    t: int = 2  # half sequence length: 2t + 1 frames
    stride: int = 3  # frames between sequence frames
    size: int = 64  # crop side (px)
    widths: tuple[int, ...] = (16, 32, 64)
    depths: tuple[int, ...] = (1, 1, 1)
    heads: tuple[int, ...] = (2, 4, 4)
    window: int = 4  # nnFormer local window (tokens)
    irregularity_stage: int = 1  # stage map read by T1; GradNorm's W is its last layer
    head_hidden: int = 64
    jigsaw_dropout: float = 0.1
    memory_slots: int = 50
    memory_shrink: float = 0.02  # MemAE hard-shrinkage threshold (0: none)
    memory_entropy_weight: float = 0.0002  # MemAE entropy term, added to T2's training loss
    middle_loss: str = "l1"  # "l1" (Eq. 1) | "l2" (§4.2)
    social_hidden: int = 32
    position_scale: float = 100.0
    track_steps: int = 8  # 7 past + current
    track_stride: int = 3
    track_max_dist: float = 0.08
    neighbours: int = 4
    detector: str = "motion"  # "motion" | "ultralytics:/path/weights.pt"
    background_frames: int = 32
    min_side: float = 16.0
    margin: float = 4.0
    max_objects: int = 16
    score_batch: int = 64  # items per network call when scoring
    # frames are decoded at most this many pixels (H * W; None: native size) for training and
    # scoring alike, so boxes, crops and the pixel settings above mean the same in both
    max_pixels: int | None = 640 * 360

    def __post_init__(self) -> None:
        for name in ("tasks", "widths", "depths", "heads"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        bad = [t for t in self.tasks if t not in TASK_NAMES]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names among {TASK_NAMES}, got {self.tasks}")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.middle_loss not in ("l1", "l2"):
            raise ValueError(f"middle_loss must be 'l1' or 'l2', got {self.middle_loss!r}")
        if not len(self.widths) == len(self.depths) == len(self.heads) >= 2:
            raise ValueError("widths, depths and heads need the same length (>= 2)")
        if not 0 <= self.irregularity_stage < len(self.widths):
            raise ValueError("irregularity_stage must index a stage")
        if self.t < 1 or self.stride < 1 or self.size % (4 * 2 ** (len(self.widths) - 1)):
            raise ValueError("t and stride must be >= 1 and size divisible by 4 * 2**(stages-1)")

    @property
    def frames(self) -> int:
        return 2 * self.t + 1

    def item_spec(self) -> ItemSpec:
        return ItemSpec(objects=self.level != "frame", frames=self.level != "object",
                        min_side=self.min_side, margin=self.margin, max_objects=self.max_objects,
                        track_steps=self.track_steps if "social" in self.tasks else 0,
                        track_stride=self.track_stride, track_max_dist=self.track_max_dist,
                        neighbours=self.neighbours)


@dataclass
class Batch:
    """Network inputs for a batch of ``B`` items (tensors on the network's device).

    ``seq`` ``(B, 3, T, S, S)`` regular sequences; ``irregular`` ``(B, 3, T, S, S)`` (training
    only, label 1); ``perms`` ``(B, 4)`` jigsaw permutations (identity at inference); tracks as
    in :class:`~methods.hycovad.objects.Items` (``past`` ``(B, 7, 2)``, ``current``, ``valid``,
    ``neighbours``, ``mask``)."""

    seq: torch.Tensor
    perms: torch.Tensor
    past: torch.Tensor
    current: torch.Tensor
    valid: torch.Tensor
    neighbours: torch.Tensor
    mask: torch.Tensor
    irregular: torch.Tensor | None = None


def to_batch(seq: np.ndarray, items: Items, device: torch.device | str,
             irregular: np.ndarray | None = None, perms: np.ndarray | None = None) -> Batch:
    """A :class:`Batch` from ``(B, T, S, S, 3)`` sequences (:func:`item_sequences`) and items."""

    def vid(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 4, 1, 2, 3))).to(device)

    def t(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    if perms is None:
        perms = np.tile(np.asarray(IDENTITY), (len(items), 1))
    return Batch(vid(seq), t(perms, torch.long), t(items.past), t(items.current),
                 t(items.valid, torch.bool), t(items.neighbours), t(items.mask, torch.bool),
                 None if irregular is None else vid(irregular))


class ProposerNet(nn.Module):
    """Encoder + the enabled heads (``ModuleDict`` keyed by task name)."""

    def __init__(self, cfg: ProposerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = make_encoder(cfg.backbone, 3, cfg.frames, cfg.size, cfg.widths,
                                    cfg.depths, cfg.heads, cfg.window)
        side = cfg.size // 4 // 2 ** cfg.irregularity_stage
        make = {
            "middle": lambda: MiddleDecoder(cfg.widths, 3, cfg.memory_slots, cfg.memory_shrink),
            "irregularity": lambda: IrregularityHead(cfg.widths[cfg.irregularity_stage],
                                                     cfg.frames, side, cfg.head_hidden),
            "jigsaw": lambda: JigsawHead(cfg.widths[-1], cfg.head_hidden, cfg.jigsaw_dropout),
            "social": lambda: SocialGRU(cfg.widths[-1], cfg.social_hidden,
                                        scale=cfg.position_scale),
        }
        self.heads = nn.ModuleDict({t: make[t]() for t in cfg.tasks})

    def shared_layer(self) -> torch.Tensor:
        """GradNorm's ``W``: the last layer of the stage T1 reads (every head depends on it)."""
        return self.encoder.last_shared_layer(self.cfg.irregularity_stage)

    def item_losses(self, b: Batch, training: bool = False) -> dict[str, torch.Tensor]:
        """Per-item unweighted losses ``{task: (B,)}`` (see the module docstring). With
        ``training``, ``irregularity`` covers ``2B`` items (``b.seq`` regular, ``b.irregular``
        irregular), ``jigsaw`` uses ``b.perms``, ``social`` only items with a valid track, and
        ``"middle_entropy"`` (a scalar) is added."""
        cfg, tasks, out = self.cfg, self.cfg.tasks, {}
        n = len(b.seq)
        regular_maps: list[torch.Tensor] | None = None
        if "irregularity" in tasks or "social" in tasks or ("jigsaw" in tasks and not training):
            x = b.seq
            if training and "irregularity" in tasks:
                assert b.irregular is not None, "training needs irregular sequences"
                x = torch.cat([b.seq, b.irregular])
            maps = self.encoder(x)
            regular_maps = [m[:n] for m in maps]
            if "irregularity" in tasks:
                logits = self.heads["irregularity"](maps[cfg.irregularity_stage])
                labels = torch.full((len(x),), REGULAR, dtype=torch.long, device=x.device)
                labels[n:] = 1
                out["irregularity"] = irregularity_loss(logits, labels)
        if "middle" in tasks:
            pred, weights = self.heads["middle"](self.encoder(mask_middle(b.seq)))
            out["middle"] = middle_loss(pred, b.seq[:, :, cfg.t], cfg.middle_loss)
            if training:
                out["middle_entropy"] = memory_entropy(weights)
        if "jigsaw" in tasks:
            if training:
                maps_j = self.encoder(jigsaw_shuffle(b.seq, b.perms))
            else:
                assert regular_maps is not None
                maps_j = regular_maps
            out["jigsaw"] = jigsaw_loss(self.heads["jigsaw"](maps_j[-1]), b.perms)
        if "social" in tasks:
            assert regular_maps is not None
            feats = regular_maps[-1].mean(dim=(2, 3, 4))
            keep = b.valid if training else torch.ones_like(b.valid)
            pred = self.heads["social"](b.past[keep], b.neighbours[keep], b.mask[keep],
                                        feats[keep])
            s = self.cfg.position_scale
            loss = social_loss(pred * s, b.current[keep] * s)
            if training:
                out["social"] = loss
            else:
                out["social"] = torch.where(b.valid, loss, torch.zeros_like(loss))
        return out

    def training_losses(self, b: Batch) -> dict[str, torch.Tensor]:
        """Scalar training loss per enabled task (batch means; T2 includes the MemAE entropy
        term times ``memory_entropy_weight``; T4 averages the valid tracks, 0 without any)."""
        per = self.item_losses(b, training=True)
        out = {}
        for t in self.cfg.tasks:
            v = per[t]
            out[t] = v.mean() if v.numel() else v.sum()
        if "middle" in out:
            out["middle"] = out["middle"] + self.cfg.memory_entropy_weight * per["middle_entropy"]
        return out


@dataclass
class ProposalScores:
    """Per-target proposer output (see the module docstring).

    ``targets`` ``(T,)`` int64 scored frames; ``total`` ``(T,)`` float64 weighted loss;
    ``per_task`` ``{task: (T,)}`` unweighted losses of the item that gave ``total``;
    ``objects`` ``(T,)`` int64 objects detected (after the ``max_objects`` cap)."""

    targets: np.ndarray
    total: np.ndarray
    per_task: dict[str, np.ndarray]
    objects: np.ndarray


@dataclass
class Proposer:
    """A proposer network with its task weights (and, after training, the calibration: the
    distribution of the per-frame total on the training frames)."""

    config: ProposerConfig
    net: ProposerNet
    weights: dict[str, float]
    calibration: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    _detector: Detector | None = None

    @classmethod
    def untrained(cls, config: ProposerConfig, seed: int = 0, device: str = "cpu") -> Proposer:
        """A randomly initialised network (``torch.manual_seed(seed)``), all weights 1."""
        torch.manual_seed(seed)
        net = ProposerNet(config).to(device).eval()
        return cls(config, net, {t: 1.0 for t in config.tasks}, device=device)

    @classmethod
    def load(cls, checkpoint_dir: str | Path, device: str = "cpu") -> Proposer:
        """Read a checkpoint directory written by :meth:`save`; :class:`CheckpointError` if it
        is missing or malformed."""
        root = Path(checkpoint_dir)
        meta_path, state_path = root / "hycovad.json", root / "proposer.pt"
        if not meta_path.is_file() or not state_path.is_file():
            raise CheckpointError(f"{root}: not a HyCoVAD proposer checkpoint (needs "
                                  "hycovad.json and proposer.pt)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{meta_path}: format {meta.get('format')!r}, expected "
                                      f"{FORMAT!r}")
            config = ProposerConfig(**meta["config"])
            net = ProposerNet(config)
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
            weights = {t: float(meta["weights"][t]) for t in config.tasks}
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError, RuntimeError, OSError, EOFError,
                pickle.UnpicklingError) as exc:
            raise CheckpointError(f"{root}: malformed HyCoVAD checkpoint ({exc})") from exc
        return cls(config, net.to(device).eval(), weights, dict(meta.get("calibration") or {}),
                   device=device)

    def save(self, out: Path, extra: dict[str, Any]) -> None:
        """Write ``proposer.pt`` and ``hycovad.json`` into ``out`` (created)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                   out / "proposer.pt")
        meta = {"format": FORMAT, "config": dataclasses.asdict(self.config),
                "weights": self.weights, "calibration": self.calibration, "extra": extra}
        (out / "hycovad.json").write_text(json.dumps(meta, indent=1, sort_keys=True,
                                                     default=str), encoding="utf-8")

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = make_detector(self.config.detector)
        return self._detector

    def _background_indices(self, num_frames: int) -> np.ndarray:
        if self.config.level == "frame" or not self.detector.needs_background:
            return np.zeros(0, dtype=np.int64)
        return background_indices(num_frames, self.config.background_frames)

    def context_indices(self, targets: np.ndarray, num_frames: int) -> np.ndarray:
        """Every 0-based frame (sorted unique int64) :meth:`score` needs for ``targets``: their
        sequences, track histories and the detector's background frames."""
        cfg = self.config
        spec = cfg.item_spec()
        steps = spec.track_steps if spec.objects else 0
        idx = context_indices(np.asarray(targets, dtype=np.int64), num_frames, cfg.t,
                              cfg.stride, steps, cfg.track_stride)
        return np.union1d(idx, self._background_indices(num_frames)).astype(np.int64)

    def items(self, frames: Frames, targets: np.ndarray, num_frames: int) -> Items:
        """Detect objects in the targets (and their track histories) and collect the items."""
        cfg, spec = self.config, self.config.item_spec()
        h, w = frames.frames.shape[1:3]
        detections: dict[int, np.ndarray] = {}
        if spec.objects:
            bg_idx = self._background_indices(num_frames)
            background = self.detector.fit_background(frames.take(bg_idx)) \
                if len(bg_idx) else None
            need = np.asarray(targets, dtype=np.int64)
            if spec.track_steps > 1:
                hist = history_indices(need, spec.track_steps, cfg.track_stride)
                need = hist[hist >= 0]
            need = np.unique(need)
            for i, boxes in zip(need, self.detector.detect(frames.take(need), background),
                                strict=True):
                detections[int(i)] = boxes
        return collect_items(np.asarray(targets), detections, w, h, spec)

    @torch.no_grad()
    def item_losses(self, frames: Frames, items: Items, num_frames: int) -> dict[str, np.ndarray]:
        """Unweighted inference losses per item ``{task: (M,) float64}``, batched."""
        cfg = self.config
        self.net.eval()
        out: dict[str, list[np.ndarray]] = {t: [] for t in cfg.tasks}
        offsets = sequence_offsets(cfg.t, cfg.stride)
        for lo in range(0, len(items), cfg.score_batch):
            part = items.select(np.arange(lo, min(lo + cfg.score_batch, len(items))))
            seq = item_sequences(frames.frames, frames.indices, part, offsets, num_frames,
                                 cfg.size)
            losses = self.net.item_losses(to_batch(seq, part, self.device))
            for t in cfg.tasks:
                out[t].append(losses[t].double().cpu().numpy())
        return {t: np.concatenate(v) if v else np.zeros(0) for t, v in out.items()}

    def score(self, frames: Frames, targets: np.ndarray, num_frames: int) -> ProposalScores:
        """Score ``targets`` ``(T,)`` (0-based frames) from ``frames``, which must hold
        :meth:`context_indices` ``(targets, num_frames)``."""
        targets = np.asarray(targets, dtype=np.int64)
        items = self.items(frames, targets, num_frames)
        losses = self.item_losses(frames, items, num_frames)
        return aggregate(targets, items, losses, self.weights)


def aggregate(targets: np.ndarray, items: Items, losses: dict[str, np.ndarray],
              weights: dict[str, float]) -> ProposalScores:
    """Per-target :class:`ProposalScores` from per-item losses: item total ``sum_i w_i L_i``;
    the target's total is the largest item total among its object rows (0 without objects)
    and its frame row (see the module docstring)."""
    n = len(targets)
    tasks = list(losses)
    item_total = np.zeros(len(items))
    for t in tasks:
        item_total += weights[t] * losses[t]
    total = np.zeros(n)
    per_task = {t: np.zeros(n) for t in tasks}
    objects = np.bincount(items.target[~items.is_frame], minlength=n).astype(np.int64)
    best = np.full(n, -1, dtype=np.int64)
    for m in range(len(items)):
        r = items.target[m]
        if best[r] < 0 or item_total[m] > item_total[best[r]]:
            best[r] = m
    has = best >= 0
    total[has] = item_total[best[has]]
    for t in tasks:
        per_task[t][has] = losses[t][best[has]]
    return ProposalScores(targets, total, per_task, objects)
