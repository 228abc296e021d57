"""What the plots of one run need: per-video frame scores and labels, curves, per-class values.

A frame run stores its scores (``predictions.jsonl``) but not the labels; the labels come from
the task, rebuilt from the run's resolved config (``config.json``: task settings, data root,
split) and read from the same annotation files the run was scored on. The dataset fingerprint
in the config is checked against the loaded samples, so a plot never pairs scores with labels
of another version of the dataset.

Conventions: frames are 0-based; :attr:`VideoTrace.intervals` are half-open ``[start, end)``
(an inclusive annotation end is converted by adding one) so that shading covers exactly the
frames labelled 1; time in seconds is ``frame / fps`` with the protocol's fps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class RunDataError(ValueError):
    """A run whose plots cannot be drawn (the message names the run and the reason)."""


@dataclass(frozen=True)
class VideoTrace:
    """One test video of a frame run.

    Attributes:
        video_id: the video's id.
        category: anomaly class (``"Normal"`` for normal videos).
        fps: the protocol's frame rate (seconds = frame / fps).
        labels: ``(n,)`` uint8 ground truth, 1 = anomalous frame.
        scores: ``(n,)`` float64 anomaly scores of the run.
        intervals: anomalous intervals ``(start, end)``, 0-based, end exclusive.
    """

    video_id: str
    category: str
    fps: float
    labels: np.ndarray
    scores: np.ndarray
    intervals: tuple[tuple[int, int], ...]


def read_run_file(run_dir: Path | str, name: str) -> dict[str, Any]:
    """A JSON object of the run directory (``config.json``, ``metrics.json``, ...).

    Raises:
        RunDataError: missing, unreadable or not a JSON object (the message names the file).
    """
    path = Path(run_dir) / name
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunDataError(f"{path}: cannot read the run's {name}: {exc}") from exc
    if not isinstance(obj, dict):
        raise RunDataError(f"{path}: not a JSON object")
    return obj


def read_config(run_dir: Path | str) -> dict[str, Any]:
    return read_run_file(run_dir, "config.json")


def read_metrics(run_dir: Path | str) -> dict[str, Any]:
    return read_run_file(run_dir, "metrics.json")


def load_traces(run_dir: Path | str) -> list[VideoTrace]:
    """The scored videos of a frame-task run, in the task's pooling order.

    Raises:
        RunDataError: not a frame task, the dataset is gone or changed, or a score vector
            does not fit its video.
    """
    from harness.registry import TASKS
    from harness.runner import dataset_fingerprint
    from harness.store import RunStore
    from tasks.records import decode_scores

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    resolved = config.get("resolved") or {}
    task_name = str(config.get("task"))
    if task_name not in TASKS.names():
        raise RunDataError(f"{run_dir}: task {task_name!r} is not registered here")
    cls: Any = TASKS.get(task_name)
    if cls.kind != "frame":
        raise RunDataError(f"{run_dir}: task {task_name!r} is a {cls.kind} task: it has no "
                           "frame scores to plot")
    try:
        task = cls(**(resolved.get("task_args") or {}))
        data_root = resolved.get("data_root")
        samples = task.load(Path(data_root) if data_root else None, config.get("split", "test"))
    except Exception as exc:  # the dataset moved or is unreadable: say which run and why
        raise RunDataError(f"{run_dir}: cannot load the ground truth of {task_name!r}: "
                           f"{exc}") from exc
    if resolved.get("limit") is not None:
        samples = samples[: int(resolved["limit"])]
    want = (config.get("dataset") or {}).get("fingerprint")
    if want and dataset_fingerprint(samples) != want:
        raise RunDataError(f"{run_dir}: the dataset on disk differs from the one this run was "
                           "scored on (fingerprint mismatch)")
    preds = RunStore(run_dir).predictions()
    out = []
    for s in samples:
        rec = preds.get(s.video_id)
        if rec is None:
            continue
        scores = decode_scores(rec.get("scores"), s.num_frames,
                               where=f"{run_dir}: video {s.video_id!r} scores")
        labels = np.asarray(s.labels if s.labels is not None else np.zeros(s.num_frames),
                            dtype=np.uint8)
        add = 1 if s.end_inclusive else 0
        intervals = tuple((int(a), min(int(b) + add, s.num_frames)) for a, b in s.intervals)
        out.append(VideoTrace(s.video_id, s.category, float(s.fps), labels,
                              np.asarray(scores, dtype=np.float64), intervals))
    return out


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points of ``n``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def curves(traces: Sequence[VideoTrace], max_points: int = 500) -> dict[str, pd.DataFrame]:
    """Pooled ROC and precision-recall curves of all frames (the protocol's pooling).

    Returns:
        ``{"roc": DataFrame(fpr, tpr), "pr": DataFrame(recall, precision)}``, one point per
        distinct score threshold (thinned to ``max_points``), starting at (0, 0) for ROC.
        Empty frames when the pool lacks positive or negative frames.
    """
    from tasks.metrics.curves import pooled_counts

    empty = {"roc": pd.DataFrame(columns=["fpr", "tpr"]),
             "pr": pd.DataFrame(columns=["recall", "precision"])}
    if not traces:
        return empty
    labels = np.concatenate([t.labels for t in traces])
    scores = np.concatenate([t.scores for t in traces])
    dp, dn = pooled_counts(labels, scores)
    tp, fp = np.cumsum(dp), np.cumsum(dn)
    pos, neg = tp[-1], fp[-1]
    if pos == 0 or neg == 0:
        return empty
    keep = _thin(len(tp), max_points)
    roc = pd.DataFrame({"fpr": np.r_[0.0, fp[keep] / neg], "tpr": np.r_[0.0, tp[keep] / pos]})
    pr = pd.DataFrame({"recall": tp[keep] / pos, "precision": tp[keep] / (tp[keep] + fp[keep])})
    return {"roc": roc, "pr": pr}


def timeline(trace: VideoTrace, max_points: int = 2000) -> pd.DataFrame:
    """``DataFrame(frame, seconds, score, label)`` of one video (thinned to ``max_points``)."""
    keep = _thin(len(trace.scores), max_points)
    return pd.DataFrame({"frame": keep, "seconds": keep / trace.fps,
                         "score": trace.scores[keep], "label": trace.labels[keep]})


def interval_frame(trace: VideoTrace) -> pd.DataFrame:
    """Ground-truth anomalous intervals for shading: ``start``/``end`` frames (end exclusive)
    and seconds."""
    iv = np.array(trace.intervals, dtype=np.float64).reshape(-1, 2)
    return pd.DataFrame({"start": iv[:, 0], "end": iv[:, 1],
                         "start_s": iv[:, 0] / trace.fps, "end_s": iv[:, 1] / trace.fps})


def per_class(run_dir: Path | str) -> pd.DataFrame:
    """Per-class values of a run: ``DataFrame(class, metric, value, n_videos)``.

    Frame tasks store ``per_class`` (AUC and PR-AUC of each anomaly class's videos); choice
    tasks store ``acc_<category>`` metrics, shown as the accuracy of each category.
    """
    result = read_metrics(run_dir)
    rows: list[dict[str, Any]] = []
    for cls_name, m in sorted((result.get("per_class") or {}).items()):
        for k, v in m.items():
            if k != "n_videos" and v is not None:
                rows.append({"class": cls_name, "metric": k, "value": float(v),
                             "n_videos": m.get("n_videos")})
    if not rows:
        for k, v in sorted((result.get("metrics") or {}).items()):
            if k.startswith("acc_") and not k.startswith("acc_avg") and v is not None:
                rows.append({"class": k[4:], "metric": "accuracy", "value": float(v),
                             "n_videos": None})
    return pd.DataFrame(rows, columns=["class", "metric", "value", "n_videos"])
