"""UCF-Crime's native files (also used by MSAD and other datasets in the same format).

* Temporal annotation (``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` /
  ``Temporal_Anomaly_Annotation.txt``): ``name class s1 e1 s2 e2 [...]``, any whitespace, the
  name with or without ``.mp4``; ``-1 -1`` marks an unused pair. Frames are 0-based (LAVAD
  and VADTree label ``s <= f <= e``); the ends are read as written, the convention is applied
  by :func:`tasks.labels.intervals_to_labels`. LAVAD's XD-Violence file has the same layout
  with ``Class[,Class]`` and more pairs.
* Test list (``Anomaly_Test.txt``): one relative video path per line,
  ``Abuse/Abuse028_x264.mp4``.
* UR-DMU frame index (``UCF_Annotation.txt``):
  ``Class/name.mp4 n_frames Class s1 e1 s2 e2``; column 2 is the number of frames.

For LAVAD's ``anomaly_test.txt`` index see :mod:`tasks.formats.lavad`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.base import TaskDataError
from tasks.formats.text import Line, read_lines
from tasks.formats.video import video_id


@dataclass(frozen=True)
class UcfAnnotation:
    """One annotated test video.

    Attributes:
        video_id: name without extension.
        category: the class column as written (``"Normal"`` for normal UCF-Crime videos).
        intervals: ``(start, end)`` pairs as written (0-based; ``-1`` pairs removed).
        lineno: 1-based line number.
    """

    video_id: str
    category: str
    intervals: tuple[tuple[int, int], ...]
    lineno: int


@dataclass(frozen=True)
class FrameCountRow:
    """One line of a UR-DMU-style frame index: relative path, frames, annotation."""

    path: str
    num_frames: int
    annotation: UcfAnnotation


def _intervals(line: Line, first: int) -> tuple[tuple[int, int], ...]:
    values = [
        line.int_at(i, f"{'se'[(i - first) % 2]}{(i - first) // 2 + 1}")
        for i in range(first, len(line.fields))
    ]
    if len(values) % 2:
        raise line.error("intervals", f"odd number of interval values ({len(values)})")
    pairs: list[tuple[int, int]] = []
    for k in range(0, len(values), 2):
        s, e = values[k], values[k + 1]
        field = f"interval {k // 2 + 1}"
        if s == -1 and e == -1:
            continue
        if s < 0 or e < 0:
            raise line.error(field, f"negative frame in ({s}, {e})")
        if e < s:
            raise line.error(field, f"end {e} before start {s}")
        pairs.append((s, e))
    return tuple(pairs)


def read_temporal_annotation(path: Path) -> dict[str, UcfAnnotation]:
    """``{video_id: UcfAnnotation}`` in file order.

    Raises:
        TaskDataError: fewer than 2 fields, a non-integer frame, an odd number of frame values,
            a negative frame (other than a ``-1 -1`` pair), ``end < start``, a repeated video.
    """
    out: dict[str, UcfAnnotation] = {}
    for line in read_lines(path):
        line.need(2, "'name class s1 e1 s2 e2'")
        vid = video_id(line.fields[0])
        if vid in out:
            raise line.error("name", f"video {vid!r} already annotated on line {out[vid].lineno}")
        out[vid] = UcfAnnotation(vid, line.fields[1], _intervals(line, 2), line.lineno)
    if not out:
        raise TaskDataError(f"{path}: annotation file lists no videos")
    return out


def read_test_list(path: Path) -> list[str]:
    """Relative video paths of a test list, in file order (``Abuse/Abuse028_x264.mp4``).

    Raises:
        TaskDataError: a line with more than one field, a repeated video, an empty list.
    """
    paths: list[str] = []
    seen: dict[str, int] = {}
    for line in read_lines(path):
        if len(line.fields) != 1:
            raise line.error("path", f"expected one relative video path, got {line.fields!r}")
        vid = video_id(line.fields[0])
        if vid in seen:
            raise line.error("path", f"video {vid!r} already listed on line {seen[vid]}")
        seen[vid] = line.lineno
        paths.append(line.fields[0].replace("\\", "/"))
    if not paths:
        raise TaskDataError(f"{path}: test list is empty")
    return paths


def read_frame_index(path: Path) -> dict[str, FrameCountRow]:
    """``{video_id: FrameCountRow}`` of a UR-DMU-style ``UCF_Annotation.txt``, file order.

    Raises:
        TaskDataError: fewer than 3 fields, a non-positive frame count, a malformed interval,
            a repeated video.
    """
    out: dict[str, FrameCountRow] = {}
    for line in read_lines(path):
        line.need(3, "'Class/name.mp4 n_frames Class s1 e1 ...'")
        vid = video_id(line.fields[0])
        if vid in out:
            raise line.error("name", f"video {vid!r} already listed")
        n = line.int_at(1, "n_frames")
        if n <= 0:
            raise line.error("n_frames", f"non-positive frame count {n}")
        ann = UcfAnnotation(vid, line.fields[2], _intervals(line, 3), line.lineno)
        out[vid] = FrameCountRow(line.fields[0].replace("\\", "/"), n, ann)
    if not out:
        raise TaskDataError(f"{path}: frame index lists no videos")
    return out
