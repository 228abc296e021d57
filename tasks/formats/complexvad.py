"""ComplexVAD annotations in vad-eval's own JSON format (ComplexVAD publishes no GT file).

One file per split, ``complexvad_test.json`` and ``complexvad_train.json``::

    {"format": "vad-eval/complexvad-v1",
     "fps": 30,
     "end_inclusive": true,
     "videos": [
        {"name": "test_001", "path": "videos/test_001.mp4", "num_frames": 240, "fps": 30,
         "label": "anomalous",
         "anomalies": [{"start": 50, "end": 120, "type": "push"}]},
        {"name": "test_002", "path": "videos/test_002.mp4", "num_frames": 300,
         "label": "normal", "anomalies": []}]}

Fields:

* ``format`` (required): exactly ``"vad-eval/complexvad-v1"``.
* ``fps`` (number > 0): the dataset's frame-rate constant, used for the 10-second window grid;
  required unless every video gives its own ``fps``.
* ``end_inclusive`` (bool, default ``true``): whether an anomaly's ``end`` frame is anomalous.
* ``videos`` (non-empty list), each with

  - ``name`` (required, unique): the video id, without extension;
  - ``path`` (optional): the video file, relative to the JSON file's folder (absolute paths
    are used as they are); a path that does not exist is kept as ``None``;
  - ``num_frames`` (required, int > 0): frames the protocol scores;
  - ``fps`` (optional, number > 0): overrides the top-level ``fps`` for this video;
  - ``label`` (required): ``"normal"`` or ``"anomalous"``;
  - ``anomalies`` (list, default empty; required non-empty for anomalous videos, empty for
    normal ones, except in a training file read with ``video_level=True``, where video-level
    labels suffice): ``{"start": int, "end": int, "type": str (optional)}``, 0-based frames,
    ``0 <= start <= end``, inside the video (``end <= num_frames - 1`` when inclusive,
    ``end <= num_frames`` otherwise);
  - ``category`` (optional): the video's class; by default the distinct anomaly ``type``
    values joined with ``","`` (``"Anomaly"`` when none is given), ``"Normal"`` for normal
    videos.

Errors are :class:`~tasks.base.TaskDataError` naming the file and the JSON path of the field
(``videos[3].anomalies[0].end``), or the line and column of a JSON syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.base import NORMAL, TaskDataError
from tasks.formats.text import read_json

FORMAT_ID = "vad-eval/complexvad-v1"
TEST_FILE = "complexvad_test.json"
TRAIN_FILE = "complexvad_train.json"


@dataclass(frozen=True)
class ComplexVadVideo:
    """One video of a ComplexVAD split (intervals as written, see ``end_inclusive``)."""

    video_id: str
    path: Path | None
    num_frames: int
    fps: float
    category: str
    intervals: tuple[tuple[int, int], ...]
    anomaly_types: tuple[str, ...]


@dataclass(frozen=True)
class ComplexVadSplit:
    """A parsed split file."""

    path: Path
    end_inclusive: bool
    videos: tuple[ComplexVadVideo, ...]


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, message: str) -> TaskDataError:
        return TaskDataError(f"{self.path}: field {where!r}: {message}")

    def get(self, obj: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...],
            default: Any = ..., ) -> Any:
        if key not in obj:
            if default is ...:
                raise self.error(f"{where}{key}", "missing")
            return default
        value = obj[key]
        if isinstance(value, bool) and kind is not bool:
            raise self.error(f"{where}{key}", f"expected {_kind(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(f"{where}{key}", f"expected {_kind(kind)}, got {value!r}")
        return value


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def read_complexvad(path: Path, *, video_level: bool = False) -> ComplexVadSplit:
    """Parse and validate one split file (see the module docstring for the format).

    ``video_level=True`` reads a training file: an anomalous video may list no anomalies (its
    label is video-level only); a normal video still must list none.

    Raises:
        TaskDataError: unreadable file, JSON syntax error, or any field violating the format.
    """
    path = Path(path)
    data = read_json(path, "annotation file")
    r = _Reader(path)
    if not isinstance(data, dict):
        raise r.error("", "the top level must be a JSON object")
    fmt = r.get(data, "format", "", str)
    if fmt != FORMAT_ID:
        raise r.error("format", f"expected {FORMAT_ID!r}, got {fmt!r}")
    fps_default = r.get(data, "fps", "", (int, float), None)
    if fps_default is not None and fps_default <= 0:
        raise r.error("fps", f"must be > 0, got {fps_default}")
    inclusive = r.get(data, "end_inclusive", "", bool, True)
    videos_raw = r.get(data, "videos", "", list)
    if not videos_raw:
        raise r.error("videos", "no videos")
    videos: list[ComplexVadVideo] = []
    seen: set[str] = set()
    for i, v in enumerate(videos_raw):
        where = f"videos[{i}]."
        if not isinstance(v, dict):
            raise r.error(f"videos[{i}]", "expected an object")
        name = r.get(v, "name", where, str)
        if not name or name in seen:
            raise r.error(f"{where}name", f"empty or repeated name {name!r}")
        seen.add(name)
        n = r.get(v, "num_frames", where, int)
        if n <= 0:
            raise r.error(f"{where}num_frames", f"must be > 0, got {n}")
        fps = r.get(v, "fps", where, (int, float), fps_default)
        if fps is None or fps <= 0:
            raise r.error(f"{where}fps", "missing here and at the top level, or not > 0")
        label = r.get(v, "label", where, str)
        if label not in ("normal", "anomalous"):
            raise r.error(f"{where}label", f"expected 'normal' or 'anomalous', got {label!r}")
        intervals, types = _anomalies(r, r.get(v, "anomalies", where, list, []), where, n,
                                      inclusive)
        if (label == "normal" and intervals) or (
                label == "anomalous" and not intervals and not video_level):
            raise r.error(f"{where}anomalies", f"a {label} video needs "
                          f"{'at least one anomaly' if label == 'anomalous' else 'none'}")
        default_cat = ((",".join(dict.fromkeys(types)) or "Anomaly") if label == "anomalous"
                       else NORMAL)
        category = r.get(v, "category", where, str, default_cat)
        if (category == NORMAL) != (label == "normal"):
            raise r.error(f"{where}category", f"category {category!r} contradicts label {label!r}")
        rel = r.get(v, "path", where, str, None)
        video_path = None
        if rel is not None:
            candidate = (path.parent / rel) if not Path(rel).is_absolute() else Path(rel)
            video_path = candidate if candidate.is_file() else None
        videos.append(ComplexVadVideo(name, video_path, n, float(fps), category, intervals,
                                      types))
    return ComplexVadSplit(path, inclusive, tuple(videos))


def _anomalies(r: _Reader, items: list[Any], where: str, n: int, inclusive: bool,
               ) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    intervals: list[tuple[int, int]] = []
    types: list[str] = []
    limit = n - 1 if inclusive else n
    for j, a in enumerate(items):
        at = f"{where}anomalies[{j}]."
        if not isinstance(a, dict):
            raise r.error(at[:-1], "expected an object")
        s = r.get(a, "start", at, int)
        e = r.get(a, "end", at, int)
        if s < 0 or e < s:
            raise r.error(f"{at}end", f"invalid interval ({s}, {e})")
        if e > limit:
            raise r.error(f"{at}end", f"end {e} beyond the video's last frame ({n} frames)")
        intervals.append((s, e))
        t = r.get(a, "type", at, str, None)
        if t:
            types.append(t)
    return tuple(intervals), tuple(types)
