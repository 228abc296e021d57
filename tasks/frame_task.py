"""Frame-level anomaly detection tasks: settings, loading, evaluation, statistics.

:class:`FrameTask` wires the pieces: a dataset subclass reads its native files into
:class:`SampleRow` records (:meth:`FrameTask.read_rows`), the task turns them into
:class:`~tasks.base.VideoSample` objects with frame labels (:mod:`tasks.labels`), and
:meth:`FrameTask.evaluate` pools per-frame scores into the metrics of
:mod:`tasks.metrics.frame`.

:meth:`FrameTask.load_train` reads the dataset's TRAINING videos with video-level labels
(:class:`~tasks.training.TrainVideo`, for weakly supervised training) through the per-dataset
hook :meth:`FrameTask.read_train_rows`: UCF-Crime's ``Anomaly_Train.txt``, XD-Violence's
``train_list.txt``, ComplexVAD's ``complexvad_train.json``. Test loading does not read them.

Settings (keyword arguments of the constructor, all optional and JSON-able):

* ``label_convention``: ``"inclusive"`` (LAVAD, VADTree; default) or ``"exclusive"`` (VERA,
  VadCLIP ``gt[s:e] = 1``) interval ends.
* ``fps``: the frame-rate constant of the window grid (default: the dataset's).
* ``window``: :class:`~tasks.windows.WindowSpec` fields (stride, window_seconds,
  frames_per_window, sampler), recorded in the protocol.
* ``bootstrap`` (default 1000; 0 disables) and ``seed``: video-resampling 95% intervals.
* ``per_class_with_normal``: per-class AUC over the class's videos plus all normal videos,
  instead of over the class's videos only (VADTree's convention and the default).
* ``annotation``, ``index``, ``test_list``: file overrides, relative to the data root or
  absolute; otherwise the known file names are searched for recursively under the data root.
* ``train_list``: the training list read by :meth:`FrameTask.load_train` (same rules).
* ``category_from`` / ``normal_classes``: for UCF-format datasets, see :mod:`tasks.ucf_tasks`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tasks.base import NORMAL, Task, TaskDataError, VideoSample, build_settings
from tasks.labels import intervals_to_labels
from tasks.metrics.frame import (
    BootstrapEntry,
    BootstrapSpec,
    FramePool,
    anomalous_videos_metrics,
    bootstrap_ci,
    per_class_metrics,
    video_max_scores,
    video_roc_auc,
)
from tasks.records import decode_scores
from tasks.training import TrainVideo
from tasks.windows import WindowSpec

CONVENTIONS = ("inclusive", "exclusive")
POOLED = ("roc_auc", "pr_auc", "average_precision")


@dataclass
class FrameSettings:
    """Settings of a frame task (see the module docstring)."""

    label_convention: str | None = None
    fps: float | None = None
    window: dict[str, Any] | None = None
    bootstrap: int = 1000
    seed: int = 0
    per_class_with_normal: bool = False
    annotation: str | None = None
    index: str | None = None
    test_list: str | None = None
    train_list: str | None = None
    category_from: str | None = None
    normal_classes: list[str] | None = None


@dataclass
class SampleRow:
    """One test video as a dataset reader found it (intervals as annotated, 0-based)."""

    video_id: str
    num_frames: int
    category: str = NORMAL
    intervals: tuple[tuple[int, int], ...] = ()
    path: Path | None = None
    start_frame: int = 0
    fps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def find_file(root: Path, override: str | None, names: Sequence[str]) -> Path | None:
    """The file to read: ``override`` (relative to ``root`` or absolute, must exist), else the
    first of ``names`` found under ``root`` (root level first, then the shallowest, then
    alphabetical path), else None."""
    if override:
        path = Path(override)
        if not path.is_absolute():
            path = root / path
        if not path.is_file():
            raise TaskDataError(f"{path}: file not found (given as {override!r})")
        return path
    for name in names:
        if (root / name).is_file():
            return root / name
        hits = sorted((p for p in root.rglob(name) if p.is_file()),
                      key=lambda p: (len(p.relative_to(root).parts), str(p)))
        if hits:
            return hits[0]
    return None


def sample_labels(sample: VideoSample) -> np.ndarray:
    """The sample's ``(num_frames,)`` uint8 labels (built from its intervals if absent)."""
    if sample.labels is not None:
        labels = np.asarray(sample.labels)
        if labels.shape != (sample.num_frames,):
            raise TaskDataError(f"video {sample.video_id!r}: {labels.shape[0]} labels for "
                                f"{sample.num_frames} frames")
        return labels
    return intervals_to_labels(sample.num_frames, sample.intervals, sample.end_inclusive)


def _num(x: Any) -> float | None:
    """JSON-safe float: NaN becomes None."""
    v = float(x)
    return None if np.isnan(v) else v


class FrameTask(Task):
    """A frame-score task over one dataset's test videos (kind ``"frame"``)."""

    kind: ClassVar[str] = "frame"
    headline: ClassVar[tuple[str, ...]] = ("roc_auc", "pr_auc", "average_precision")
    metric_keys: ClassVar[tuple[str, ...]] = (
        "roc_auc", "pr_auc", "average_precision", "roc_auc_anomalous_videos", "video_roc_auc")
    dataset: ClassVar[str] = ""
    default_fps: ClassVar[float] = 30.0
    sample_dataset: ClassVar[str | None] = None
    Settings: ClassVar[type[FrameSettings]] = FrameSettings

    def __init__(self, **settings: Any) -> None:
        self.settings = build_settings(self.Settings, f"task {self.name!r}", settings)
        s = self.settings
        if s.label_convention not in (None, *CONVENTIONS):
            raise ValueError(f"task {self.name!r}: label_convention must be one of "
                             f"{CONVENTIONS}, got {s.label_convention!r}")
        if s.fps is not None and not s.fps > 0:
            raise ValueError(f"task {self.name!r}: fps must be > 0, got {s.fps}")
        if s.bootstrap < 0:
            raise ValueError(f"task {self.name!r}: bootstrap must be >= 0, got {s.bootstrap}")
        try:
            self.window_spec = WindowSpec(**(s.window or {}))
        except TypeError as exc:
            raise ValueError(f"task {self.name!r}: bad window setting ({exc})") from exc
        self.file_convention: str | None = None
        self.sources: dict[str, str] = {}
        self.train_sources: dict[str, str] = {}

    # -- protocol parameters -------------------------------------------------------------
    @property
    def fps(self) -> float:
        """The dataset's frame-rate constant for window lengths (setting or default)."""
        return float(self.settings.fps or self.default_fps)

    def video_fps(self, native: float | None = None) -> float:
        """A video's protocol fps: the ``fps`` setting, else the video's own constant from the
        annotation (``native``), else the dataset's default."""
        return float(self.settings.fps or native or self.default_fps)

    @property
    def label_convention(self) -> str:
        return self.settings.label_convention or self.file_convention or "inclusive"

    @property
    def end_inclusive(self) -> bool:
        return self.label_convention == "inclusive"

    def protocol(self) -> dict[str, Any]:
        spec = self.window_spec
        return {
            "task": self.name,
            "dataset": self.dataset or self.name,
            "label_convention": self.label_convention,
            "end_inclusive": self.end_inclusive,
            "frames": "0-based",
            "fps": self.fps,
            "window": {**dataclasses.asdict(spec), "window_frames": spec.window_frames(self.fps)},
            "pooling": "all frames of all evaluated videos concatenated",
            "pr_auc": "trapezoidal auc(recall, precision) (LAVAD/VERA/VADTree/RTFM/UR-DMU 'AP')",
            "average_precision": "sklearn average_precision_score, step sum (VadCLIP 'AP')",
            "per_class": ("class videos + all normal videos" if self.settings.per_class_with_normal
                          else "class videos only (VADTree)"),
            "video_roc_auc": "video score = max frame score, label = anomalous video",
            "bootstrap": {"resamples": self.settings.bootstrap, "seed": self.settings.seed,
                          "unit": "video, with replacement", "interval": "percentile 95%"},
            "sources": dict(self.sources),
        }

    # -- loading ---------------------------------------------------------------------------
    @abc.abstractmethod
    def read_rows(self, root: Path) -> list[SampleRow]:
        """Read the dataset's native files under ``root``, recording them in ``self.sources``."""

    def load(self, data_root: Path | None, split: str) -> list[VideoSample]:
        root = self.resolve_root(data_root, split, self.sample_dataset)
        self.sources = {"data_root": str(root)}
        rows = self.read_rows(root)
        if not rows:
            raise TaskDataError(f"{root}: no test videos found for task {self.name!r}")
        return [self._sample(r) for r in rows]

    def _sample(self, row: SampleRow) -> VideoSample:
        shifted = []
        for s, e in row.intervals:  # LAVAD: frame f is annotated frame f + start_frame
            if e - row.start_frame >= 0:
                shifted.append((max(s - row.start_frame, 0), e - row.start_frame))
        labels = intervals_to_labels(row.num_frames, shifted, self.end_inclusive)
        extra = dict(row.extra)
        if row.start_frame:
            extra["start_frame"] = row.start_frame
        return VideoSample(row.video_id, row.num_frames, self.video_fps(row.fps), row.category,
                           row.intervals, self.end_inclusive, labels, row.path, extra)

    # -- training videos -------------------------------------------------------------------
    def find_train_list(self, root: Path, names: tuple[str, ...]) -> Path:
        """The training list under ``root`` (the ``train_list`` setting, else the first of
        ``names`` found), recorded in ``self.train_sources``.

        Raises:
            TaskDataError: none found.
        """
        path = find_file(root, self.settings.train_list, names)
        if path is None:
            raise TaskDataError(f"{root}: no training list ({' / '.join(names)}) found; set "
                                "'train_list'")
        self.train_sources["train_list"] = str(path)
        return path

    def read_train_rows(self, root: Path) -> list[TrainVideo]:
        """Read the dataset's training list under ``root`` (recording the files read in
        ``self.train_sources``). Datasets with a training list override this.

        Raises:
            TaskDataError: always here: the task has no training list.
        """
        raise TaskDataError(f"task {self.name!r} has no training list (no training videos "
                            f"can be loaded for it)")

    def load_train(self, data_root: Path | None, split: str) -> list[TrainVideo]:
        """The dataset's training videos with video-level labels, in the list's order.

        ``data_root`` and ``split`` are resolved as in :meth:`load` (``split="sample"`` without
        a data root reads the bundled sample world). The files read are recorded in
        ``self.train_sources`` (``self.sources``, the test protocol's, is left alone).

        Raises:
            TaskDataError: no training list, a malformed or empty one, a repeated video id.
        """
        root = self.resolve_root(data_root, split, self.sample_dataset)
        self.train_sources = {"data_root": str(root)}
        videos = self.read_train_rows(root)
        if not videos:
            raise TaskDataError(f"{root}: no training videos found for task {self.name!r}")
        seen: set[str] = set()
        for v in videos:
            if v.video_id in seen:
                raise TaskDataError(f"{root}: training video {v.video_id!r} listed twice "
                                    f"({self.train_sources.get('train_list', 'training list')})")
            seen.add(v.video_id)
        return videos

    # -- statistics ------------------------------------------------------------------------
    def describe(self, samples: Sequence[VideoSample]) -> dict[str, Any]:
        per_class: dict[str, dict[str, int]] = {}
        total = anomalous = 0
        for s in samples:
            n_anom = int(sample_labels(s).sum())
            c = per_class.setdefault(s.category, {"videos": 0, "frames": 0,
                                                  "anomalous_frames": 0})
            c["videos"] += 1
            c["frames"] += s.num_frames
            c["anomalous_frames"] += n_anom
            total += s.num_frames
            anomalous += n_anom
        n_anom_videos = sum(1 for s in samples if s.is_anomalous)
        return {
            "task": self.name,
            "videos": len(samples),
            "frames": total,
            "anomalous_frames": anomalous,
            "anomalous_videos": n_anom_videos,
            "normal_videos": len(samples) - n_anom_videos,
            "per_class": dict(sorted(per_class.items())),
            "unreadable_videos": {s.video_id: s.extra["unreadable"] for s in samples
                                  if s.extra.get("unreadable")},
            "protocol": self.protocol(),
        }

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(
        self, samples: Sequence[VideoSample], predictions: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Pool per-frame scores of the predicted videos into the protocol's metrics.

        Args:
            samples: the loaded test videos (their order is the pooling order).
            predictions: ``video_id -> {"scores": [float per frame] or run-length dict,
                "step_scores": {step: same} (optional)}`` (see :mod:`tasks.records`).

        Returns:
            ``{"metrics": {roc_auc, pr_auc, average_precision, roc_auc_anomalous_videos,
            video_roc_auc, n_videos, n_frames, n_anomalous_frames, missing_videos},
            "per_class": {class: {roc_auc, pr_auc, n_videos}}, "ci95": {metric: [lo, hi]},
            "steps": {step: metrics of that step's scores, with missing_videos},
            "missing_video_ids": [...], "unmatched_predictions": int, "protocol": {...}}``.
            Undefined values (no positive frame, ...) are None, so the dict is strict JSON.

        Raises:
            ScoreFormatError: a score vector whose length differs from the video's frame count,
                or non-finite scores (the message names the video and both lengths).
        """
        ids = [s.video_id for s in samples]
        if len(set(ids)) != len(ids):
            raise ValueError("samples repeat a video id")
        used: list[VideoSample] = []
        labels: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        missing: list[str] = []
        step_scores: dict[str, dict[str, np.ndarray]] = {}
        extra = len(set(predictions) - set(ids))
        for s in samples:
            rec = predictions.get(s.video_id)
            if rec is None:
                missing.append(s.video_id)
                continue
            used.append(s)
            labels.append(sample_labels(s))
            scores.append(decode_scores(rec.get("scores"), s.num_frames,
                                        where=f"video {s.video_id!r} scores"))
            for step, obj in (rec.get("step_scores") or {}).items():
                step_scores.setdefault(step, {})[s.video_id] = decode_scores(
                    obj, s.num_frames, where=f"video {s.video_id!r} step_scores[{step!r}]")
        metrics, pools = self._metrics(used, labels, scores)
        metrics["missing_videos"] = len(missing)
        pool, video_pool, is_anom = pools
        spec = BootstrapSpec(self.settings.bootstrap, self.settings.seed)
        ci = bootstrap_ci({"": BootstrapEntry(pool),
                           "anomalous_videos": BootstrapEntry(pool, is_anom, roc_only=True),
                           "video": BootstrapEntry(video_pool, roc_only=True)}, spec)
        ci95 = {k: [_num(ci[""][k][0]), _num(ci[""][k][1])] for k in POOLED if "" in ci}
        for name, key in (("anomalous_videos", "roc_auc_anomalous_videos"),
                          ("video", "video_roc_auc")):
            if name in ci:
                ci95[key] = [_num(ci[name]["roc_auc"][0]), _num(ci[name]["roc_auc"][1])]
        per_class = per_class_metrics(pool, [s.category for s in used],
                                      self.settings.per_class_with_normal)
        steps = {}
        for step, by_id in sorted(step_scores.items()):
            keep = [i for i, s in enumerate(used) if s.video_id in by_id]
            step_metrics, _ = self._metrics([used[i] for i in keep], [labels[i] for i in keep],
                                            [by_id[used[i].video_id] for i in keep])
            step_metrics["missing_videos"] = len(samples) - len(keep)
            steps[step] = step_metrics
        return {
            "metrics": metrics,
            "per_class": {c: {k: (_num(v) if k != "n_videos" else v) for k, v in m.items()}
                          for c, m in per_class.items()},
            "ci95": ci95,
            "steps": steps,
            "missing_video_ids": missing,
            "unmatched_predictions": extra,
            "protocol": self.protocol(),
        }

    def _metrics(self, used: Sequence[VideoSample], labels: Sequence[np.ndarray],
                 scores: Sequence[np.ndarray],
                 ) -> tuple[dict[str, Any], tuple[FramePool, FramePool, np.ndarray]]:
        pool = FramePool.build(labels, scores)
        is_anom = np.array([s.is_anomalous for s in used], dtype=np.int64)
        pooled = pool.metrics(np.ones(len(used), dtype=np.int64))
        top = video_max_scores(scores)
        video_pool = FramePool.build([np.array([a]) for a in is_anom], [np.array([m]) for m in top])
        out: dict[str, Any] = {k: _num(pooled[k]) for k in POOLED}
        out["roc_auc_anomalous_videos"] = _num(anomalous_videos_metrics(pool, is_anom)["roc_auc"])
        out["video_roc_auc"] = _num(video_roc_auc(is_anom, top))
        out["n_videos"] = len(used)
        out["n_frames"] = int(sum(len(x) for x in labels))
        out["n_anomalous_frames"] = int(sum(int(x.sum()) for x in labels))
        return out, (pool, video_pool, is_anom)
