"""``vad-eval train --method hycovad``: the proposer's multi-task self-supervised training.

HyCoVAD trains only its stage-1 proposer (paper §4.2), on the task's *normal* training videos.
Every video is decoded once and kept in memory; objects are detected in every frame and every
(frame, object) pair (and/or the whole frame, by ``level``) becomes a training item
(:func:`methods.hycovad.objects.collect_items`). One step samples ``batch_size`` random items
and builds, per item: the regular crop sequence (T2 with its middle frame masked, T4's features),
an irregular one for T1 (:func:`irregular_offsets`: temporally shuffled, or frames skipped with
uneven larger gaps) and a jigsaw permutation for T3 (:func:`random_perms`).

Schedule (§4.2), in epochs of ``steps_per_epoch`` steps:

* phase 0 (``phase0_epochs``): encoder only, all heads frozen;
* phase 1 (``phase1_epochs``): heads unfrozen gradually from the output inward: in phase-1
  epoch ``k`` the first ``ceil((k + 1) * G / phase1_epochs)`` of a head's ``G`` layer groups
  (:meth:`unfreeze_groups`, output first) train;
* phase 2 (the rest): everything, with a fresh AdamW and one learning rate
  (``phase2_learning_rate``, default ``learning_rate``).

The learning rate is multiplied by ``lr_decay`` every ``lr_decay_every`` epochs. Every step the
loss is ``sum_i w_i L_i`` (Eq. 5) and the GradNorm weights ``w`` are updated
(:mod:`methods.hycovad.gradnorm`, ``g_i`` w.r.t. :meth:`ProposerNet.shared_layer`).

Memory: frames are decoded at ``max_pixels`` at most. When the training videos have at most
``memory_frames`` frames in all, every frame is decoded once and kept (the sample world). Otherwise
every epoch draws new random segments (:func:`plan_segments`): ``segment_frames`` target frames
of a random video plus the context their sequences, irregular sequences and track histories
reach (:func:`context_radius`) and the detector's background frames, until the epoch's budget of
``memory_frames`` decoded frames is spent; the previous epoch's frames are dropped.

After training, the per-frame total of the trained proposer on the training frames in memory
(all of them when they fit the budget, else the last epoch's segments; every
``calibration_stride``-th frame) is summarised into ``calibration`` (quantiles, mean, std) so
that the method can set a threshold relative to normal data.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from harness.training import (
    StepLog,
    TrainingError,
    TrainJob,
    TrainResult,
    build_config,
    config_values,
)
from harness.video import Frames, count_frames, read_frames
from methods.hycovad.gradnorm import GradNorm
from methods.hycovad.objects import Items, item_sequences, sequence_offsets
from methods.hycovad.proposer import Proposer, ProposerConfig, to_batch

PRESETS = Path(__file__).parent / "presets"
DEFAULT_PRESET = "tiny"
QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass
class HyCoVADTrainConfig(ProposerConfig):
    """:class:`ProposerConfig` plus the optimisation settings (module docstring)."""

    model: str | None = None  # not used: HyCoVAD trains its own network (must stay None)
    learning_rate: float = 1e-3
    phase2_learning_rate: float | None = None
    head_lr_scale: float = 1.0  # heads' learning rate / encoder's in phases 0-1
    weight_decay: float = 0.01
    batch_size: int = 8
    steps_per_epoch: int = 20
    epochs: int = 10
    steps: int | None = None  # total steps (default epochs * steps_per_epoch)
    phase0_epochs: int = 1
    phase1_epochs: int = 2
    lr_decay: float = 0.1
    lr_decay_every: int = 10  # epochs
    gradnorm_alpha: float = 1.5
    gradnorm_lr: float = 0.025
    max_gap_factor: int = 3  # skipped sequences: gaps in stride + 1 .. max_gap_factor * stride
    frame_stride: int = 1  # training target frames: every frame_stride-th
    calibration_stride: int = 10
    memory_frames: int = 20000  # decoded frames held at once (module docstring)
    segment_frames: int = 900  # target frames per segment when the videos exceed memory_frames
    seed: int | None = None  # None: the job's seed
    threads: int = 0  # torch CPU threads while training (0: torch's default)

    def proposer_config(self) -> ProposerConfig:
        names = {f.name for f in dataclasses.fields(ProposerConfig)}
        return ProposerConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})

    def total_steps(self) -> int:
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch


def load_config(job: TrainJob) -> HyCoVADTrainConfig:
    """Defaults < preset/file (``tiny`` unless ``--config``) < ``method_args`` < ``--steps``."""
    if job.stage is not None:
        raise TrainingError("HyCoVAD has one training routine (three phases inside it); "
                            "--stage does not apply")
    if job.model is not None:
        raise TrainingError("HyCoVAD trains its own proposer network; --model does not apply")
    source = dataclasses.replace(job, config=job.config or DEFAULT_PRESET)
    values, where = config_values(source, PRESETS, "HyCoVAD")
    if job.steps is not None:
        values["steps"] = job.steps

    def validate(c: HyCoVADTrainConfig) -> None:
        if c.batch_size < 1 or c.steps_per_epoch < 1 or c.total_steps() < 1:
            raise ValueError("batch_size, steps_per_epoch and steps must be >= 1")
        if c.phase0_epochs < 0 or c.phase1_epochs < 0:
            raise ValueError("phase lengths must be >= 0")

    return build_config(HyCoVADTrainConfig, values, where, "HyCoVAD", validate)


def irregular_offsets(rng: np.random.Generator, n: int, t: int, stride: int,
                      max_gap_factor: int = 3) -> np.ndarray:
    """``(n, 2t + 1)`` frame offsets of irregular sequences, half of each kind on average:
    *shuffled* (the regular offsets in a random order that is neither the identity nor the
    reversal) or *skipped* (``2t`` gaps drawn from ``stride + 1 .. max_gap_factor * stride``,
    the sequence centred on its middle frame)."""
    regular = sequence_offsets(t, stride)
    out = np.zeros((n, len(regular)), dtype=np.int64)
    for k in range(n):
        if rng.random() < 0.5:
            while True:
                order = rng.permutation(len(regular))
                if not (np.all(np.diff(order) > 0) or np.all(np.diff(order) < 0)):
                    break
            out[k] = regular[order]
        else:
            gaps = rng.integers(stride + 1, max(max_gap_factor * stride, stride + 1) + 1, 2 * t)
            offs = np.concatenate([[0], np.cumsum(gaps)])
            out[k] = offs - offs[t]
    return out


def random_perms(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 4)`` uniformly random permutations of the 4 jigsaw cells (identity included)."""
    return np.stack([rng.permutation(4) for _ in range(n)]) if n else np.zeros((0, 4), int)


@dataclass
class _Video:
    """A decoded training video (or segment of one) and its items."""

    video_id: str
    frames: Frames
    num_frames: int
    items: Items
    start: int = 0  # target frames [start, stop) of the segment
    stop: int = 0


@dataclass(frozen=True)
class Source:
    """A training video to decode: its id, file and frame count."""

    video_id: str
    path: Path
    num_frames: int


@dataclass(frozen=True)
class Segment:
    """Target frames ``[start, stop)`` (0-based, stop exclusive) of training video ``video``
    (an index into the sources)."""

    video: int
    start: int
    stop: int


def context_radius(cfg: HyCoVADTrainConfig) -> int:
    """Frames before or after a target that a training item may read: the widest skipped
    sequence (``t`` gaps of at most ``max_gap_factor * stride``) plus the track history."""
    gap = max(cfg.max_gap_factor * cfg.stride, cfg.stride + 1)
    return cfg.t * gap + (cfg.track_steps - 1) * cfg.track_stride


def segment_cost(seg: Segment, num_frames: int, radius: int) -> int:
    """Frames decoded for ``seg``: its targets and ``radius`` frames each side, clipped."""
    return min(num_frames, seg.stop + radius) - max(0, seg.start - radius)


def plan_segments(lengths: list[int], budget: int, segment_frames: int, radius: int,
                  rng: np.random.Generator) -> list[Segment]:
    """What to hold in memory: every video whole when ``sum(lengths) <= budget``; else random
    segments of ``segment_frames`` targets (whole videos when shorter), videos visited in a
    random order (again and again), until the next segment would exceed ``budget`` decoded
    frames (:func:`segment_cost`); at least one segment. Background frames are not counted."""
    if sum(lengths) <= budget:
        return [Segment(v, 0, n) for v, n in enumerate(lengths)]
    out: list[Segment] = []
    used = 0
    while True:
        for v in rng.permutation(len(lengths)):
            n = lengths[int(v)]
            length = min(segment_frames, n)
            start = int(rng.integers(0, n - length + 1))
            seg = Segment(int(v), start, start + length)
            cost = segment_cost(seg, n, radius)
            if out and used + cost > budget:
                return out
            out.append(seg)
            used += cost


def sources_of(videos: list[Any]) -> list[Source]:
    """The training videos' files and frame counts (counted when the list gives none)."""
    out = []
    for v in videos:
        if v.path is None:
            raise TrainingError(f"training video {v.video_id!r} has no file")
        n = v.num_frames if v.num_frames > 0 else count_frames(v.path)
        out.append(Source(v.video_id, Path(v.path), n))
    return out


class HyCoVADTrainer:
    """The training loop (module docstring) over decoded normal videos."""

    def __init__(self, cfg: HyCoVADTrainConfig, sources: list[Source], seed: int,
                 device: str = "cpu") -> None:
        self.cfg, self.device, self.sources = cfg, device, sources
        self.rng = np.random.default_rng(seed)
        self.proposer = Proposer.untrained(cfg.proposer_config(), seed=seed, device=device)
        self.net = self.proposer.net
        self.radius = context_radius(cfg)
        self.streaming = sum(s.num_frames for s in sources) > cfg.memory_frames
        self.videos: list[_Video] = []
        self.loads: list[dict[str, int]] = []
        self._load()
        self.gradnorm = GradNorm(cfg.tasks, cfg.gradnorm_alpha, cfg.gradnorm_lr)
        self.optimizer: torch.optim.Optimizer | None = None
        self.phase = -1

    def _load(self) -> None:
        """Decode the segments of :func:`plan_segments` (dropping the previous ones) and
        collect their items."""
        cfg = self.cfg
        segments = plan_segments([s.num_frames for s in self.sources], cfg.memory_frames,
                                 cfg.segment_frames, self.radius, self.rng)
        self.videos = []
        decoded = 0
        for seg in segments:
            src = self.sources[seg.video]
            n = src.num_frames
            lo, hi = max(0, seg.start - self.radius), min(n, seg.stop + self.radius)
            wanted = np.union1d(np.arange(lo, hi), self.proposer.context_indices(
                np.arange(seg.start, seg.stop, cfg.frame_stride), n))
            frames = read_frames(src.path, wanted, max_pixels=cfg.max_pixels)
            decoded += len(frames.indices)
            targets = np.arange(seg.start, seg.stop, cfg.frame_stride)
            self.videos.append(_Video(src.video_id, frames, n,
                                      self.proposer.items(frames, targets, n), seg.start,
                                      seg.stop))
        self.index = np.asarray([(v, r) for v, video in enumerate(self.videos)
                                 for r in range(len(video.items))], dtype=np.int64)
        self.loads.append({"segments": len(segments), "decoded_frames": decoded,
                           "items": len(self.index)})
        if len(self.index) == 0:
            raise TrainingError("no training items: no objects were detected in the normal "
                                "training videos (try level 'frame' or 'both')")

    def batch(self) -> Any:
        """A random training :class:`~methods.hycovad.proposer.Batch` of ``batch_size`` items."""
        cfg = self.cfg
        pick = self.index[self.rng.integers(0, len(self.index), cfg.batch_size)]
        regular = sequence_offsets(cfg.t, cfg.stride)
        seqs, irregs, parts = [], [], []
        for v in np.unique(pick[:, 0]):
            video = self.videos[int(v)]
            part = video.items.select(pick[pick[:, 0] == v, 1])
            fr = video.frames
            seqs.append(item_sequences(fr.frames, fr.indices, part, regular, video.num_frames,
                                       cfg.size))
            offs = irregular_offsets(self.rng, len(part), cfg.t, cfg.stride, cfg.max_gap_factor)
            irregs.append(item_sequences(fr.frames, fr.indices, part, offs, video.num_frames,
                                         cfg.size))
            parts.append(part)
        items = Items(*(np.concatenate([getattr(p, f.name) for p in parts])
                        for f in dataclasses.fields(Items)))
        return to_batch(np.concatenate(seqs), items, self.device, np.concatenate(irregs),
                        random_perms(self.rng, len(items)))

    # -- schedule ----------------------------------------------------------------------------
    def _set_phase(self, epoch: int) -> int:
        cfg = self.cfg
        p0, p1 = cfg.phase0_epochs, cfg.phase1_epochs
        phase = 0 if epoch < p0 else 1 if epoch < p0 + p1 else 2
        for p in self.net.encoder.parameters():
            p.requires_grad_(True)
        for head in self.net.heads.values():
            groups = cast(Any, head).unfreeze_groups()
            n_open = 0 if phase == 0 else len(groups) if phase == 2 else \
                math.ceil((epoch - p0 + 1) * len(groups) / p1)
            for rank, group in enumerate(groups):
                params = [group] if isinstance(group, torch.nn.Parameter) else \
                    list(group.parameters())
                for p in params:
                    p.requires_grad_(rank < n_open)
        if phase != self.phase:
            if phase == 2 or self.optimizer is None:
                self.optimizer = self._optimizer(phase)
            self.phase = phase
        return phase

    def _optimizer(self, phase: int) -> torch.optim.Optimizer:
        cfg = self.cfg
        if phase == 2:
            lr = cfg.phase2_learning_rate or cfg.learning_rate
            groups = [{"params": list(self.net.parameters()), "lr": lr, "base": lr}]
        else:
            head_lr = cfg.learning_rate * cfg.head_lr_scale
            groups = [{"params": list(self.net.encoder.parameters()), "lr": cfg.learning_rate,
                       "base": cfg.learning_rate},
                      {"params": list(self.net.heads.parameters()), "lr": head_lr,
                       "base": head_lr}]
        return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    # -- one step ----------------------------------------------------------------------------
    def step(self, step: int) -> dict[str, Any]:
        cfg = self.cfg
        epoch = step // cfg.steps_per_epoch
        if self.streaming and step > 0 and step % cfg.steps_per_epoch == 0:
            self._load()  # a new epoch: new random segments
        phase = self._set_phase(epoch)
        assert self.optimizer is not None
        decay = cfg.lr_decay ** (epoch // cfg.lr_decay_every) if cfg.lr_decay_every > 0 else 1.0
        for pg in self.optimizer.param_groups:
            pg["lr"] = pg["base"] * decay
        self.net.train()
        losses = self.net.training_losses(self.batch())
        params = [p for p in self.net.parameters() if p.requires_grad]
        shared = self.net.shared_layer()
        weights = self.gradnorm.weights.copy()
        norms = np.zeros(len(cfg.tasks))
        self.optimizer.zero_grad(set_to_none=True)
        for k, t in enumerate(cfg.tasks):
            grads = torch.autograd.grad(losses[t], params, retain_graph=k < len(cfg.tasks) - 1,
                                        allow_unused=True)
            for p, g in zip(params, grads, strict=True):
                if g is None:
                    continue
                if p is shared:
                    norms[k] = float(g.norm())
                p.grad = weights[k] * g if p.grad is None else p.grad + weights[k] * g
        self.optimizer.step()
        values = {t: float(v.detach()) for t, v in losses.items()}
        self.gradnorm.update(values, norms)
        row: dict[str, Any] = {"step": step + 1, "epoch": epoch, "phase": phase,
                               "loss": float(sum(w * values[t] for w, t in
                                                 zip(weights, cfg.tasks, strict=True))),
                               "lr": self.optimizer.param_groups[0]["lr"]}
        row.update({f"loss_{t}": values[t] for t in cfg.tasks})
        row.update({f"weight_{t}": w for t, w in self.gradnorm.weight_dict().items()})
        row.update({f"grad_norm_{t}": float(g) for t, g in zip(cfg.tasks, norms, strict=True)})
        return row

    def run(self, log: StepLog) -> dict[str, Any]:
        rows = [log(self.step(k)) for k in range(self.cfg.total_steps())]
        self.proposer.weights = self.gradnorm.weight_dict()
        self.net.eval()
        n = max(1, len(rows) // 10)
        keys = ["loss", *[f"loss_{t}" for t in self.cfg.tasks]]
        return {"steps": len(rows), "videos": len(self.videos), "items": len(self.index),
                "first_losses": {k: float(np.mean([r[k] for r in rows[:n]])) for k in keys},
                "final_losses": {k: float(np.mean([r[k] for r in rows[-n:]])) for k in keys},
                "weights": self.proposer.weights, "seconds": rows[-1]["elapsed_s"],
                "streaming": self.streaming,
                "max_decoded_frames": max(x["decoded_frames"] for x in self.loads),
                "loads": len(self.loads)}

    def calibration(self) -> dict[str, Any]:
        """Distribution of the trained proposer's per-frame total on the training frames."""
        totals = []
        for video in self.videos:
            targets = np.arange(video.start, video.stop, self.cfg.calibration_stride)
            totals.append(self.proposer.score(video.frames, targets, video.num_frames).total)
        tot = np.concatenate(totals)
        return {"total_quantiles": {str(q): float(np.quantile(tot, q)) for q in QUANTILES},
                "total_mean": float(tot.mean()), "total_std": float(tot.std()),
                "frames": len(tot), "stride": self.cfg.calibration_stride}


def _device(job: TrainJob) -> str:
    if job.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return job.device


def train_hycovad(job: TrainJob) -> TrainResult:
    """Train a HyCoVAD proposer for ``job`` on its task's normal training videos and save it to
    ``job.out`` (:meth:`Proposer.save`)."""
    from harness.registry import TASKS

    cfg = load_config(job)
    task: Any = TASKS.get(job.task)(**job.task_args)  # type: ignore[operator]
    load_train = getattr(task, "load_train", None)
    if load_train is None:
        raise TrainingError(f"task {job.task!r} has no training videos (HyCoVAD trains on the "
                            "normal training videos of a frame-level VAD dataset)")
    videos = load_train(job.data_path(), job.resolved_split())
    normal = [v for v in videos if v.label == 0]
    if not normal:
        raise TrainingError(f"task {job.task!r} split {job.resolved_split()!r}: none of its "
                            f"{len(videos)} training videos is normal; HyCoVAD trains on normal "
                            "videos only")
    seed = job.seed if cfg.seed is None else cfg.seed
    threads = torch.get_num_threads()
    if cfg.threads > 0:  # restored below
        torch.set_num_threads(cfg.threads)
    try:
        t0 = time.perf_counter()
        trainer = HyCoVADTrainer(cfg, sources_of(normal), seed, _device(job))
        prep_s = time.perf_counter() - t0
        summary = trainer.run(StepLog(job))
        t1 = time.perf_counter()
        trainer.proposer.calibration = trainer.calibration()
    finally:
        torch.set_num_threads(threads)
    summary.update(prep_seconds=round(prep_s, 3),
                   calibration_seconds=round(time.perf_counter() - t1, 3),
                   normal_videos=len(normal), skipped_anomalous_videos=len(videos) - len(normal),
                   calibration=trainer.proposer.calibration)
    extra = {"train": {"config": dataclasses.asdict(cfg), "summary": summary, "task": job.task,
                       "split": job.resolved_split(), "data_root": job.data_root, "seed": seed,
                       "videos": [v.video_id for v in normal]}}
    trainer.proposer.save(job.out, extra)
    return TrainResult(job.out, summary)
