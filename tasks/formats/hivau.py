"""HIVAU-70K's native test files (pipixin321/HolmesVAU, ``HIVAU-70k/``).

* ``instruction/merge_instruction_test_final.jsonl``: one row per question,
  ``{"id": int, "type": "clip"|"event"|"video", "task": "caption"|"judgement"|"description"|
  "analysis", "video": "ucf-crime/clips/test/Abuse028_x264_E0C0.mp4", "prompt": str,
  "anwser": str}`` (the answer key is spelled ``anwser`` in the real file; ``answer`` is
  accepted too). 3,339 rows: clip caption 2,207; event judgement/description/analysis
  276/276/182; video 150/150/98.
* ``raw_annotations/<dataset>_database_test.json``: per raw video (name without extension)
  ``{"n_frames", "fps", "label", "events": [[s, e] seconds], "clips": [[[s, e], ...] per
  event], ...}``. Only the UCF-Crime database is public.

Videos: a row's ``video`` path is looked up under the data root first (the pre-cut clip and
event files of the HIVAU release). When it is absent, the clip or event is cut on the fly from
the raw video: ``<raw>_E<i>`` is event ``i`` and ``<raw>_E<i>C<j>`` clip ``j`` of event ``i`` in
the database, the raw video being ``<dataset>/videos/test/<raw>.mp4`` under the root (or any
file named ``<raw>.mp4`` below it). Seconds become frames as the official splitter does,
``int(t * fps)``; the span is ``[int(s * fps), int(e * fps))``, end exclusive, clipped to the
video and at least one frame long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.base import TaskDataError
from tasks.formats.text import read_json, read_jsonl

INSTRUCTIONS = "merge_instruction_test_final.jsonl"
LEVELS = ("clip", "event", "video")
TASK_TYPES = ("caption", "judgement", "description", "analysis")
_CUT = re.compile(r"^(?P<raw>.+)_E(?P<event>\d+)(?:C(?P<clip>\d+))?$")


@dataclass(frozen=True)
class Row:
    """One question of the instruction file."""

    id: str
    level: str
    task: str
    video: str
    prompt: str
    answer: str
    lineno: int


@dataclass(frozen=True)
class RawVideo:
    """A raw video's entry in a database file (times in seconds)."""

    name: str
    n_frames: int
    fps: float
    events: tuple[tuple[float, float], ...]
    clips: tuple[tuple[tuple[float, float], ...], ...]


def read_rows(path: Path) -> list[Row]:
    """Parse and validate the instruction file (errors name the file, line and field)."""
    rows = []
    seen: set[str] = set()
    for lineno, obj in read_jsonl(path, "HIVAU instruction file"):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict):
            raise TaskDataError(f"{where}: expected a JSON object")
        answer = obj.get("anwser", obj.get("answer"))
        for fld, value in (("type", obj.get("type")), ("task", obj.get("task")),
                           ("video", obj.get("video")), ("prompt", obj.get("prompt")),
                           ("anwser", answer)):
            if not isinstance(value, str):
                raise TaskDataError(f"{where}: field {fld!r} missing or not a string")
        if obj["type"] not in LEVELS:
            raise TaskDataError(f"{where}: field 'type' must be one of {LEVELS}, "
                                f"got {obj['type']!r}")
        rid = str(obj.get("id", lineno))
        if rid in seen:
            raise TaskDataError(f"{where}: id {rid!r} occurs twice")
        seen.add(rid)
        rows.append(Row(rid, obj["type"], obj["task"], obj["video"], obj["prompt"],
                        str(answer), lineno))
    return rows


def _pair(value: Any, where: str) -> tuple[float, float]:
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(isinstance(x, int | float) for x in value)):
        raise TaskDataError(f"{where}: expected [start, end] seconds, got {value!r}")
    return float(value[0]), float(value[1])


def read_database(path: Path) -> dict[str, RawVideo]:
    """Parse a ``*_database_test.json`` file into ``{raw name: RawVideo}``."""
    data = read_json(path, "HIVAU database")
    if not isinstance(data, dict):
        raise TaskDataError(f"{path}: expected an object keyed by video name")
    out = {}
    for name, v in data.items():
        where = f"{path}: video {name!r}"
        if not isinstance(v, dict):
            raise TaskDataError(f"{where}: expected an object")
        n, fps = v.get("n_frames"), v.get("fps")
        if not isinstance(n, int) or not isinstance(fps, int | float) or fps <= 0:
            raise TaskDataError(f"{where}: fields 'n_frames' (int) and 'fps' (> 0) required")
        events = tuple(_pair(e, f"{where}: events[{i}]")
                       for i, e in enumerate(v.get("events") or []))
        clips = tuple(
            tuple(_pair(c, f"{where}: clips[{i}][{j}]") for j, c in enumerate(ev or []))
            for i, ev in enumerate(v.get("clips") or [])
        )
        out[str(name)] = RawVideo(str(name), n, float(fps), events, clips)
    return out


def seconds_to_span(start: float, end: float, fps: float, n_frames: int) -> tuple[int, int]:
    """``[int(start * fps), int(end * fps))`` clipped to ``[0, n_frames)``, >= 1 frame."""
    s = min(max(int(start * fps), 0), max(n_frames - 1, 0))
    e = min(max(int(end * fps), s + 1), n_frames) if n_frames > 0 else max(int(end * fps), s + 1)
    return s, max(e, s + 1)


def cut_of(video: str) -> tuple[str, int | None, int | None]:
    """``".../X_E0C1.mp4"`` -> ``("X", 0, 1)``; ``".../X_E2.mp4"`` -> ``("X", 2, None)``;
    anything else -> ``(stem, None, None)``."""
    stem = Path(video).stem
    m = _CUT.match(stem)
    if m is None:
        return stem, None, None
    clip = m.group("clip")
    return m.group("raw"), int(m.group("event")), int(clip) if clip is not None else None


@dataclass(frozen=True)
class Resolved:
    """Where a row's frames come from: ``path`` + ``span`` (None = the whole file)."""

    path: Path | None
    span: tuple[int, int] | None
    num_frames: int
    fps: float
    reason: str | None = None


class VideoLocator:
    """Resolves instruction-file video paths under a data root (see the module docstring)."""

    def __init__(self, root: Path, database: dict[str, RawVideo]) -> None:
        self.root = root
        self.database = database
        self._by_stem: dict[str, Path] | None = None

    def _find_raw(self, video: str, raw: str) -> Path | None:
        parts = Path(video).parts
        if len(parts) >= 3:  # <dataset>/<clips|events|videos>/<split>/<file>
            cand = self.root / parts[0] / "videos" / Path(*parts[2:-1]) / f"{raw}.mp4"
            if cand.is_file():
                return cand
        if self._by_stem is None:
            self._by_stem = {}
            for p in sorted(self.root.rglob("*.mp4")):
                self._by_stem.setdefault(p.stem, p)
        return self._by_stem.get(raw)

    def resolve(self, video: str, level: str) -> Resolved:
        direct = self.root / video
        raw_name, event, clip = cut_of(video)
        entry = self.database.get(raw_name if level != "video" else Path(video).stem)
        if direct.is_file():  # a cut file: its frame count is read when it is decoded
            whole = level == "video" and entry is not None
            return Resolved(direct, None, entry.n_frames if whole and entry else 0,
                            entry.fps if entry else 30.0)
        if entry is None:
            return Resolved(None, None, 0, 30.0, f"{video}: file not found under {self.root} "
                            f"and {raw_name!r} is in no database file to cut it from")
        raw = self._find_raw(video, entry.name)
        if raw is None:
            return Resolved(None, None, 0, entry.fps,
                            f"{video}: not found under {self.root}, nor the raw video "
                            f"{entry.name}.mp4 to cut it from")
        if level == "video" or event is None:
            return Resolved(raw, None, entry.n_frames, entry.fps)
        try:
            s, e = entry.events[event] if clip is None else entry.clips[event][clip]
        except IndexError:
            return Resolved(None, None, 0, entry.fps,
                            f"{video}: event/clip index not in the database entry of "
                            f"{entry.name!r}")
        return Resolved(raw, seconds_to_span(s, e, entry.fps, entry.n_frames), entry.n_frames,
                        entry.fps)
