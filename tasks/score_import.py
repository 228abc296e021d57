"""Evaluate frame scores produced by other codebases with a task's protocol.

Formats (``fmt``) for frame tasks (text answers of language-side tasks:
:mod:`tasks.text_import`, same entry point):

* ``segments-json`` (LAVAD / VADTree): ``{"vid_score": {"X.mp4": {"s, e": value}}}`` (the
  ``vid_score`` wrapper is optional). Segment ``"s, e"`` covers frames ``s..e`` INCLUSIVE
  (0-based); ``value`` is a number or a list whose element ``field`` (default 0) is the score
  (VADTree stores ``[score, text]`` and, after refinement, ``[refined, raw, text]``). Segments
  are applied in file order and a later segment overwrites the frames it shares with an
  earlier one (VADTree's neighbouring segments share their boundary frame). A segment ending
  beyond the video, and frames that no segment covers, are errors naming the video.
* ``frames-json``: ``{video: [score per frame]}``, or the same under ``"vid_score"`` (VADTree's
  final ensemble files, e.g. MSAD ``final_ense_beta-0.4.json``).
* ``frames-npy``: ``.npy`` holding one 1-D vector, the per-frame scores of ``samples``
  concatenated in the order given (as RTFM / UR-DMU store their predictions; snippet-level
  predictions must be expanded to frames first); ``.npz`` holding one 1-D array per video id.
  Loaded with ``allow_pickle=False``.

Video keys match the sample's id with or without a video extension. After reading,
``transform="sigmoid"`` applies ``1 / (1 + exp(-x))`` and ``round_digits`` rounds with
``numpy.round`` (VADTree: sigmoid, then 4 decimals). Videos absent from the file count as
missing (see :meth:`tasks.frame_task.FrameTask.evaluate`); keys matching no sample are counted
in ``result["import"]["unused_keys"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks.base import Task, TaskDataError, VideoSample
from tasks.formats.text import read_json
from tasks.formats.video import video_id

FORMATS = ("segments-json", "frames-json", "frames-npy")
TRANSFORMS = (None, "sigmoid")


def _by_id(obj: Mapping[str, Any], path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        vid = video_id(str(key))
        if vid in out:
            raise TaskDataError(f"{path}: video {vid!r} appears twice")
        out[vid] = value
    return out


def _load_json(path: Path) -> dict[str, Any]:
    data = read_json(path, "score file")
    if isinstance(data, dict) and isinstance(data.get("vid_score"), dict):
        data = data["vid_score"]
    if not isinstance(data, dict):
        raise TaskDataError(f"{path}: expected a JSON object of videos")
    return _by_id(data, path)


def segments_to_frames(segments: Mapping[str, Any], num_frames: int, field: int,
                       where: str) -> np.ndarray:
    """``{"s, e": value}`` -> ``(num_frames,)`` float64 frame scores (ends inclusive).

    Raises:
        TaskDataError: malformed key or value, a segment beyond the video, an uncovered frame.
    """
    out = np.full(num_frames, np.nan)
    for key, value in segments.items():
        try:
            s, e = (int(float(x)) for x in str(key).split(","))
        except ValueError:
            raise TaskDataError(f"{where}: segment key {key!r} is not 's, e'") from None
        score = value[field] if isinstance(value, list) and -len(value) <= field < len(value) \
            else value
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise TaskDataError(f"{where}: segment {key!r}: no numeric score at field {field}")
        if s < 0 or e < s or e >= num_frames:
            raise TaskDataError(f"{where}: segment {key!r} outside frames 0..{num_frames - 1}")
        out[s:e + 1] = float(score)
    gaps = np.flatnonzero(np.isnan(out))
    if gaps.size:
        raise TaskDataError(f"{where}: {gaps.size} frame(s) covered by no segment, first "
                            f"frame {int(gaps[0])}")
    return out


def _read(path: Path, fmt: str, samples: Sequence[VideoSample], field: int,
          ) -> tuple[dict[str, np.ndarray], int]:
    ids = {s.video_id for s in samples}
    n_frames = {s.video_id: s.num_frames for s in samples}
    if fmt == "frames-npy":
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    data = _by_id({k: z[k] for k in z.files}, path)
            else:
                vec = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:  # object arrays need pickles: refused
            raise TaskDataError(f"{path}: cannot load ({exc})") from exc
        if path.suffix != ".npz":
            total = sum(s.num_frames for s in samples)
            if vec.ndim != 1 or vec.shape[0] != total:
                raise TaskDataError(f"{path}: expected a 1-D vector of {total} frame scores "
                                    f"({len(samples)} videos in sample order), got {vec.shape}")
            cuts = np.cumsum([s.num_frames for s in samples])[:-1]
            return dict(zip([s.video_id for s in samples], np.split(vec, cuts),
                            strict=True)), 0
    else:
        data = _load_json(path)
    scores = {}
    for vid, value in data.items():
        if vid not in ids:
            continue
        where = f"{path}: video {vid!r}"
        if fmt == "segments-json":
            if not isinstance(value, dict):
                raise TaskDataError(f"{where}: expected {{'s, e': score}} segments")
            scores[vid] = segments_to_frames(value, n_frames[vid], field, where)
        else:
            try:
                scores[vid] = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TaskDataError(f"{where}: scores are not numbers ({exc})") from None
    return scores, len(set(data) - ids)


def score_external(
    task: Task,
    samples: Sequence[VideoSample],
    path: str | Path,
    fmt: str,
    field: int | None = None,
    transform: str | None = None,
    round_digits: int | None = None,
) -> dict[str, Any]:
    """Evaluate an external score file with ``task`` (same result as ``task.evaluate``).

    Args:
        task: the task whose protocol applies (labels, pooling, bootstrap).
        samples: the task's loaded samples; ``frames-npy`` vectors follow their order.
        path: the score file.
        fmt: one of :data:`FORMATS` (see the module docstring).
        field: list element holding the score in ``segments-json`` values (default 0).
        transform: None or ``"sigmoid"``, applied to every frame score.
        round_digits: round after the transform (``numpy.round``), None = no rounding.

    Raises:
        TaskDataError: unknown format or transform, or a malformed file (message names it).
        ValueError: a video whose score vector length differs from its frame count.
    """
    from tasks.text_import import TEXT_FORMATS, score_text
    from tasks.text_task import TextTask

    if isinstance(task, TextTask) or fmt in TEXT_FORMATS:
        if not isinstance(task, TextTask):
            raise TaskDataError(f"format {fmt!r} holds text answers; task {task.name!r} scores "
                                f"frames (formats: {', '.join(FORMATS)})")
        if fmt not in TEXT_FORMATS:
            raise TaskDataError(f"task {task.name!r} scores text answers: format must be one "
                                f"of {', '.join(TEXT_FORMATS)}, not {fmt!r}")
        if field is not None or transform is not None or round_digits is not None:
            raise TaskDataError("--field, --transform and --round apply to frame scores only")
        return score_text(task, samples, path, fmt)
    if fmt not in FORMATS:
        raise TaskDataError(f"unknown score format {fmt!r}; known: {', '.join(FORMATS)}")
    if field is not None and fmt != "segments-json":
        raise TaskDataError(f"--field picks a value inside each segment's list and applies to "
                            f"segments-json only, not {fmt!r}")
    if transform not in TRANSFORMS:
        raise TaskDataError(f"unknown transform {transform!r}; known: sigmoid")
    p = Path(path)
    if not p.is_file():
        raise TaskDataError(f"{p}: score file not found")
    scores, unused = _read(p, fmt, samples, 0 if field is None else int(field))
    predictions = {}
    for vid, vec in scores.items():
        if transform == "sigmoid":
            vec = 1.0 / (1.0 + np.exp(-vec))
        if round_digits is not None:
            vec = np.round(vec, int(round_digits))
        predictions[vid] = {"video_id": vid, "scores": vec}
    result = task.evaluate(samples, predictions)
    result["import"] = {"path": str(p), "format": fmt, "field": field, "transform": transform,
                        "round_digits": round_digits, "unused_keys": unused}
    return result
