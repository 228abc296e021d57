"""Datasets in UCF-Crime's annotation format: ``ucf_crime``, ``msad`` and ``ucf_format``.

Files (searched recursively under the data root unless a setting names them):

* temporal annotation (``annotation``): ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``
  or ``Temporal_Anomaly_Annotation.txt`` (:func:`tasks.formats.ucf.read_temporal_annotation`);
* frame index (``index``): LAVAD-style ``anomaly_test.txt`` (end inclusive,
  :mod:`tasks.formats.lavad`) or UR-DMU-style ``UCF_Annotation.txt`` (frame count in column 2);
  the layout is recognised from the first line;
* test list (``test_list``): ``Anomaly_Test.txt``, relative video paths;
* training list (``train_list``): ``Anomaly_Train.txt``, relative video paths
  (``Abuse/Abuse001_x264.mp4``, ``Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4``),
  read by :meth:`~tasks.frame_task.FrameTask.load_train` only.

Which videos, in which order: the LAVAD index, else the test list, else the UR-DMU index, else
the annotation file. Frame counts: the LAVAD index, else the UR-DMU index, else the video files
(PyAV, :func:`tasks.formats.video.frame_count`). When both a LAVAD index and a test list are
present they must list the same videos. Every test video needs an annotation line.

Categories: the annotation's class column (``category_from="annotation"``), or the class
derived from the video name (``"name"``: ``Object_falling_3`` -> ``Object Falling``,
``Abuse028_x264`` -> ``Abuse``). A video whose class is one of ``normal_classes`` is normal and
must have no interval; any other video must have at least one.

Training videos (video-level labels, :func:`tasks.training.ucf_train_category`): the class is
the list path's folder (``category_from="annotation"``; the name rule without a folder) or the
name rule (``"name"``); a video is normal when that class is one of ``normal_classes`` or its
folder or name carries the word ``normal`` (``Training_Normal_Videos_Anomaly/``,
``Normal_Videos001_x264``). Files: the listed path under the data root, else the one video file
with that name anywhere under it (``None`` when there is none); frame counts are left unknown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from tasks.base import NORMAL, TaskDataError
from tasks.formats.lavad import IndexRow, read_lavad_index
from tasks.formats.text import read_lines
from tasks.formats.ucf import (
    FrameCountRow,
    UcfAnnotation,
    read_frame_index,
    read_temporal_annotation,
    read_test_list,
)
from tasks.formats.video import VideoFiles, frame_count, video_id
from tasks.frame_task import FrameTask, SampleRow, find_file
from tasks.training import TrainVideo, VideoLocator, label_of, read_video_list, ucf_train_category

ANNOTATION_NAMES = ("Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
                    "Temporal_Anomaly_Annotation.txt")
INDEX_NAMES = ("anomaly_test.txt", "UCF_Annotation.txt")
LIST_NAMES = ("Anomaly_Test.txt",)
TRAIN_LIST_NAMES = ("Anomaly_Train.txt",)


def name_category(vid: str) -> str:
    """Class from a video name: drop ``_x264`` and the trailing number, ``_`` -> space, words
    capitalised (``Object_falling_3`` -> ``Object Falling``; ``RoadAccidents001_x264`` ->
    ``RoadAccidents``)."""
    base = re.sub(r"_x264$", "", vid)
    base = re.sub(r"[_\-\s]*\d+$", "", base)
    words = [w for w in re.split(r"[_\-\s]+", base) if w]
    return " ".join(w[:1].upper() + w[1:] for w in words) or vid


def _is_lavad_index(path: Path) -> bool:
    first = next(iter(read_lines(path)), None)
    return first is not None and len(first.fields) >= 3 and first.fields[2].lstrip("-").isdigit()


class UcfFormatTask(FrameTask):
    """Any dataset in UCF-Crime's annotation format, configured by settings."""

    name: ClassVar[str] = "ucf_format"
    dataset: ClassVar[str] = "ucf_format"
    description: ClassVar[str] = (
        "Frame-level VAD on a dataset in UCF-Crime's annotation format (settings: annotation, "
        "index or test_list, fps, category_from, normal_classes)")
    default_fps: ClassVar[float] = 30.0
    sample_dataset: ClassVar[str | None] = "ucf_crime"
    default_category_from: ClassVar[str] = "annotation"
    default_normal_classes: ClassVar[tuple[str, ...]] = (NORMAL,)

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        if self.settings.category_from not in (None, "annotation", "name"):
            raise ValueError(f"task {self.name!r}: category_from must be 'annotation' or "
                             f"'name', got {self.settings.category_from!r}")

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(),
                "category_from": self.settings.category_from or self.default_category_from,
                "normal_classes": list(self.settings.normal_classes
                                       or self.default_normal_classes)}

    def read_rows(self, root: Path) -> list[SampleRow]:
        s = self.settings
        ann_path = find_file(root, s.annotation, ANNOTATION_NAMES)
        if ann_path is None:
            raise TaskDataError(f"{root}: no temporal annotation file "
                                f"({' / '.join(ANNOTATION_NAMES)}); set 'annotation'")
        annotations = read_temporal_annotation(ann_path)
        index_path = find_file(root, s.index, INDEX_NAMES)
        list_path = find_file(root, s.test_list, LIST_NAMES)
        lavad: dict[str, IndexRow] = {}
        counts: dict[str, FrameCountRow] = {}
        if index_path is not None and _is_lavad_index(index_path):
            lavad = {r.video_id: r for r in read_lavad_index(index_path)}
        elif index_path is not None:
            counts = read_frame_index(index_path)
        rel_paths = {video_id(p): p for p in read_test_list(list_path)} if list_path else {}
        if lavad and rel_paths and set(lavad) != set(rel_paths):
            only = sorted(set(lavad) ^ set(rel_paths))
            raise TaskDataError(f"{index_path} and {list_path} list different videos "
                                f"({len(only)} differ, e.g. {only[0]!r})")
        order_src = next(p for p, d in ((index_path, lavad), (list_path, rel_paths),
                                        (index_path, counts), (ann_path, annotations)) if d)
        order = list(lavad or rel_paths or counts or annotations)
        self.sources.update(annotation=str(ann_path), order=str(order_src),
                            frame_counts=str(index_path) if (lavad or counts) else "videos")
        if list_path:
            self.sources["test_list"] = str(list_path)
        videos = VideoFiles(root)
        rows = []
        for vid in order:
            ann = annotations.get(vid)
            if ann is None:
                raise TaskDataError(f"{ann_path}: no annotation line for test video {vid!r} "
                                    f"(listed in {order_src})")
            path = root / rel_paths[vid] if vid in rel_paths else None
            path = path if path is not None and path.is_file() else videos.get(vid)
            start = 0
            unreadable = None
            if vid in lavad:
                n, start = lavad[vid].num_frames, lavad[vid].start
            elif vid in counts:
                n = counts[vid].num_frames
            elif path is not None:
                n, unreadable = frame_count(path)
            else:
                raise TaskDataError(f"video {vid!r}: no frame count (no index lists it and no "
                                    f"video file was found under {root})")
            rows.append(SampleRow(vid, n, self._category(ann, ann_path), ann.intervals, path,
                                  start, extra={"unreadable": unreadable} if unreadable else {}))
        return rows

    def read_train_rows(self, root: Path) -> list[TrainVideo]:
        path = self.find_train_list(root, TRAIN_LIST_NAMES)
        how = self.settings.category_from or self.default_category_from
        normal = self.settings.normal_classes or self.default_normal_classes
        files = VideoLocator(root)
        videos = []
        for entry in read_video_list(path):
            category = ucf_train_category(entry.relpath, how, normal)
            videos.append(TrainVideo(entry.video_id, files.get(entry.relpath), label_of(category),
                                     category, self.video_fps()))
        return videos

    def _category(self, ann: UcfAnnotation, path: Path) -> str:
        normal = set(self.settings.normal_classes or self.default_normal_classes)
        where = f"{path}:{ann.lineno}: field 'class'"
        if ann.category in normal:
            if ann.intervals:
                raise TaskDataError(f"{where}: video {ann.video_id!r} has normal class "
                                    f"{ann.category!r} but anomalous intervals")
            return NORMAL
        if not ann.intervals:
            raise TaskDataError(f"{where}: video {ann.video_id!r} has class {ann.category!r} "
                                f"but no anomalous interval (add the class to normal_classes "
                                f"if it marks normal videos)")
        how = self.settings.category_from or self.default_category_from
        return name_category(ann.video_id) if how == "name" else ann.category


class UcfCrimeTask(UcfFormatTask):
    """UCF-Crime test set (290 videos, 140 anomalous), fps constant 30 (LAVAD, VERA)."""

    name: ClassVar[str] = "ucf_crime"
    dataset: ClassVar[str] = "ucf_crime"
    description: ClassVar[str] = "UCF-Crime frame-level VAD (290 test videos; AUC, PR-AUC)"


class MsadTask(UcfFormatTask):
    """MSAD test set (240 videos) as published by VADTree: UCF-format annotation whose class
    column is truncated (``Object``) and ``MSAD`` for normal videos, with a LAVAD-style index.

    Classes come from the video names (``Object_falling_3`` -> ``Object Falling``), as in
    VADTree, whose stored per-class metrics this reproduces. MSAD videos have varying frame
    rates (VADTree sets ``video_fps="auto"`` for MSAD); the window grid uses the constant 30
    unless ``fps`` is set. No sample world exists for MSAD, so only the ``test`` split is
    offered.
    """

    name: ClassVar[str] = "msad"
    dataset: ClassVar[str] = "msad"
    description: ClassVar[str] = "MSAD frame-level VAD (240 test videos; AUC, PR-AUC)"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    sample_dataset: ClassVar[str | None] = None
    default_category_from: ClassVar[str] = "name"
    default_normal_classes: ClassVar[tuple[str, ...]] = (NORMAL, "MSAD")
