"""Training videos of the frame-level datasets, with video-level labels.

Weakly supervised training routines (MIL and its successors) see only whether a training
video contains an anomaly somewhere, not where. :meth:`tasks.frame_task.FrameTask.load_train`
reads a dataset's training videos in its native format into :class:`TrainVideo` records; the
per-dataset readers (``read_train_rows``) use the helpers here:

* :func:`read_video_list`: a list file of one video per line (UCF-Crime's
  ``Anomaly_Train.txt``: ``Abuse/Abuse001_x264.mp4``; the XD-Violence sample world's
  ``train_list.txt``), file order kept, repeated videos rejected;
* :func:`ucf_train_category`: the class of a UCF-format training video, from its folder or its
  name, and whether it is normal;
* :class:`VideoLocator`: finds the listed files the way the test videos are found.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from tasks.base import NORMAL, TaskDataError
from tasks.formats.text import Line, read_lines
from tasks.formats.video import VideoFiles, video_id

#: A ``normal`` word in a folder or video name: UCF-Crime's ``Training_Normal_Videos_Anomaly/``
#: and ``Normal_Videos001_x264``, MSAD's ``MSAD_normal_training_1``.
_NORMAL_WORD = re.compile(r"(?:^|[_\-\s.])normal(?=$|[_\-\s.\d])", re.IGNORECASE)


@dataclass(frozen=True)
class TrainVideo:
    """One training video with a video-level label."""

    video_id: str  # name without extension, e.g. "Abuse001_x264"
    path: Path | None  # the video file (resolved like the test videos are), None if not found
    label: int  # 1 = anomalous video, 0 = normal
    category: str  # class ("Abuse", "Normal", XD's classes "Shooting,Explosion", ...)
    fps: float  # the task's protocol fps constant (same rule as test samples)
    num_frames: int = 0  # 0 = unknown (count from the file when needed)


@dataclass(frozen=True)
class ListEntry:
    """One line of a video list: the path as written (``/`` separated) and its video id."""

    line: Line
    relpath: str
    video_id: str


def label_of(category: str) -> int:
    """Video-level label of a class: 0 for ``"Normal"``, 1 for anything else."""
    return 0 if category == NORMAL else 1


def read_video_list(path: Path, what: str = "training list") -> list[ListEntry]:
    """The videos of a list file (one relative path or name per line), in file order.

    Blank lines are skipped, leading and trailing whitespace ignored, ``\\`` read as ``/``.

    Raises:
        TaskDataError: a missing or unreadable file, a line that is not exactly one path, a
            path without a video name, a repeated video, an empty list (the message names the
            file and the line).
    """
    entries: list[ListEntry] = []
    seen: dict[str, int] = {}
    for line in read_lines(path):
        if len(line.fields) != 1:
            raise line.error("path", f"expected one relative video path, got {line.fields!r}")
        rel = line.fields[0].replace("\\", "/")
        vid = video_id(rel)
        if not vid:
            raise line.error("path", f"no video name in {rel!r}")
        if vid in seen:
            raise line.error("path", f"video {vid!r} already listed on line {seen[vid]}")
        seen[vid] = line.lineno
        entries.append(ListEntry(line, rel, vid))
    if not entries:
        raise TaskDataError(f"{path}: {what} is empty")
    return entries


def is_normal_name(name: str) -> bool:
    """Whether a folder or video name carries the word ``normal`` (any case, delimited by
    ``_``, ``-``, ``.``, space, a digit or the ends): ``Training_Normal_Videos_Anomaly``,
    ``Normal_Videos001_x264``, ``MSAD_normal_training_1``; not ``Abnormal_3``."""
    return _NORMAL_WORD.search(name) is not None


def ucf_train_category(relpath: str, category_from: str,
                       normal_classes: Collection[str]) -> str:
    """Class of a UCF-format training video listed as ``relpath``; ``"Normal"`` if normal.

    The class is the parent folder (``Abuse/Abuse001_x264.mp4`` -> ``Abuse``) when
    ``category_from == "annotation"`` (the folder plays the test annotation's class column) and
    the path has one, else the name rule :func:`tasks.ucf_tasks.name_category`
    (``Object_falling_3`` -> ``Object Falling``). The video is normal when that class is one
    of ``normal_classes``, or the folder or the video name carries the word ``normal``
    (:func:`is_normal_name`: ``Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4``).
    """
    from tasks.ucf_tasks import name_category  # lazy: tasks.ucf_tasks imports this module

    parts = [p for p in relpath.replace("\\", "/").split("/") if p]
    vid = video_id(relpath)
    folder = parts[-2] if len(parts) > 1 else None
    category = folder if category_from == "annotation" and folder else name_category(vid)
    normal = set(normal_classes)
    if (category in normal or name_category(vid) in normal or is_normal_name(vid)
            or (folder is not None and (folder in normal or is_normal_name(folder)))):
        return NORMAL
    return category


class VideoLocator:
    """Finds listed videos the way the test videos are found: ``root / relpath`` when that file
    exists (absolute paths as they are), else the one file with the video's id anywhere under
    ``root`` (the recursive scan is made on first need only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: VideoFiles | None = None

    def get(self, relpath: str) -> Path | None:
        """The file of ``relpath``, None if absent.

        Raises:
            TaskDataError: several files under the root have the video's id.
        """
        direct = self.root / relpath
        if direct.is_file():
            return direct
        if self._files is None:
            self._files = VideoFiles(self.root)
        return self._files.get(video_id(relpath))
