"""Frame-score fields of prediction records: plain lists or run-length encoded.

A frame-task record's ``scores`` (and each entry of ``step_scores``) is either a JSON list with
one float per 0-based frame, or a run-length encoding ``{"values": [v0, v1, ...],
"counts": [n0, n1, ...]}`` meaning ``v0`` repeated ``n0`` times, then ``v1`` ... . Window-level
scores expanded by repeat-and-truncate compress 16-fold this way, which keeps
``predictions.jsonl`` small on million-frame test sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ScoreFormatError(ValueError):
    """A score field is malformed; the message names the video and the field."""


def encode_rle(scores: np.ndarray) -> dict[str, list[Any]]:
    """``(N,)`` float array -> ``{"values", "counts"}`` (exact: no rounding)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return {"values": [], "counts": []}
    change = np.flatnonzero(s[1:] != s[:-1]) + 1
    starts = np.concatenate(([0], change))
    counts = np.diff(np.concatenate((starts, [s.size])))
    return {"values": s[starts].tolist(), "counts": counts.tolist()}


def decode_scores(obj: Any, num_frames: int, where: str = "scores") -> np.ndarray:
    """A record's score field -> ``(num_frames,)`` float64.

    Raises:
        ScoreFormatError: wrong type, non-finite values, or a length other than ``num_frames``
            (``where`` names the video and field in the message).
    """
    if isinstance(obj, dict):
        if set(obj) != {"values", "counts"}:
            raise ScoreFormatError(f"{where}: run-length scores need exactly 'values' and 'counts'")
        values = np.asarray(obj["values"], dtype=np.float64)
        counts = np.asarray(obj["counts"], dtype=np.int64)
        if values.shape != counts.shape or (counts < 0).any():
            raise ScoreFormatError(f"{where}: 'values' and 'counts' differ in length or negative")
        arr = np.repeat(values, counts)
    elif isinstance(obj, list | np.ndarray):
        try:
            arr = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ScoreFormatError(f"{where}: scores are not numbers ({exc})") from exc
    else:
        raise ScoreFormatError(f"{where}: expected a list of floats or run-length dict, "
                               f"got {type(obj).__name__}")
    if arr.ndim != 1 or arr.shape[0] != num_frames:
        raise ScoreFormatError(
            f"{where}: {arr.shape[0] if arr.ndim == 1 else arr.shape} scores for a video of "
            f"{num_frames} frames"
        )
    if not np.isfinite(arr).all():
        first = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ScoreFormatError(f"{where}: non-finite score at frame {first}")
    return arr
