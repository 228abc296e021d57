"""LAVAD-style test index (``anomaly_test.txt``): one video per line.

Layout: ``path start_frame end_frame label[,label...]``, any whitespace, e.g.
``Abuse028_x264 0 1411 0``. ``end_frame`` is INCLUSIVE, so the video has
``end - start + 1`` frames (LAVAD ``VideoRecord.num_frames``); LAVAD labels frame ``f`` with the
annotation at ``f + start_frame``. The label column is dataset-specific (UCF-Crime class ids
with normal = 7 in LAVAD, all 0 in VADTree; XD-Violence codes with 4 = normal; MSAD 0/1), so
readers only cross-check it where its meaning is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.base import TaskDataError
from tasks.formats.text import read_lines
from tasks.formats.video import video_id


@dataclass(frozen=True)
class IndexRow:
    """One index line.

    Attributes:
        video_id: name without folders and extension.
        path: the first field as written (may contain folders).
        start: first frame (0-based) of the annotated range.
        end: last frame, inclusive.
        labels: the label column split on ``","`` (empty if absent).
        lineno: 1-based line number.
    """

    video_id: str
    path: str
    start: int
    end: int
    labels: tuple[str, ...]
    lineno: int

    @property
    def num_frames(self) -> int:
        """``end - start + 1`` (end inclusive)."""
        return self.end - self.start + 1


def read_lavad_index(path: Path) -> list[IndexRow]:
    """Rows of a LAVAD-style index in file order.

    Raises:
        TaskDataError: a line with fewer than 3 fields, a non-integer frame, ``end < start``,
            a negative start, or a repeated video (message names file, line, field).
    """
    rows: list[IndexRow] = []
    seen: dict[str, int] = {}
    for line in read_lines(path):
        line.need(3, "'name start_frame end_frame [labels]'")
        start = line.int_at(1, "start_frame")
        end = line.int_at(2, "end_frame")
        if start < 0:
            raise line.error("start_frame", f"negative start frame {start}")
        if end < start:
            raise line.error("end_frame", f"end frame {end} before start frame {start}")
        vid = video_id(line.fields[0])
        if vid in seen:
            raise line.error("name", f"video {vid!r} already listed on line {seen[vid]}")
        seen[vid] = line.lineno
        labels = tuple(x for x in line.fields[3].split(",") if x) if len(line.fields) > 3 else ()
        rows.append(IndexRow(vid, line.fields[0], start, end, labels, line.lineno))
    if not rows:
        raise TaskDataError(f"{path}: index lists no videos")
    return rows
