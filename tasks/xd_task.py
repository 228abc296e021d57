"""``xd_violence``: XD-Violence test set (800 videos, 500 anomalous), fps constant 24.

Files under the data root (searched recursively unless a setting names them):

* ``annotations.txt`` (``annotation``): intervals of the anomalous videos
  (:func:`tasks.formats.xd.read_xd_annotations`); every other test video is normal;
* the test videos, in this order of preference: a LAVAD-style ``anomaly_test.txt``
  (``index`` or ``test_list``; 800 rows, end inclusive, label column with ``4``/``A`` =
  normal), giving the frame counts too; else the video files of a ``videos/`` folder (or of
  the data root), sorted by name, with frame counts read by PyAV.

Categories come from the names' ``_label_`` codes (:func:`tasks.formats.xd.xd_category`).
Consistency checks: every annotated video is a test video, a test video is annotated exactly
when its name says it is anomalous, and the index's label column agrees with the name.

Training videos (:meth:`~tasks.frame_task.FrameTask.load_train`): ``train_list.txt``
(``train_list``), one video per line, a path relative to the data root or a bare name, with or
without ``.mp4`` (``train/<name>_label_B1-0-0.mp4``). The label comes from the name's code:
``_label_A`` is normal (0), any anomaly code anomalous (1); the category is the code's classes
as for test videos. Files: the listed path, else the one video file with that name under the
data root (``None`` when there is none); frame counts are left unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from tasks.base import NORMAL, TaskDataError
from tasks.formats.lavad import IndexRow, read_lavad_index
from tasks.formats.video import VideoFiles, frame_count
from tasks.formats.xd import XD_INDEX_NORMAL, read_xd_annotations, xd_category
from tasks.frame_task import FrameTask, SampleRow, find_file
from tasks.training import TrainVideo, VideoLocator, label_of, read_video_list

TRAIN_LIST_NAMES = ("train_list.txt",)


class XdViolenceTask(FrameTask):
    """XD-Violence frame-level VAD."""

    name: ClassVar[str] = "xd_violence"
    dataset: ClassVar[str] = "xd_violence"
    description: ClassVar[str] = "XD-Violence frame-level VAD (800 test videos; AUC, PR-AUC)"
    default_fps: ClassVar[float] = 24.0
    sample_dataset: ClassVar[str | None] = "xd_violence"

    def read_train_rows(self, root: Path) -> list[TrainVideo]:
        path = self.find_train_list(root, TRAIN_LIST_NAMES)
        files = VideoLocator(root)
        videos = []
        for entry in read_video_list(path):
            try:
                category = xd_category(entry.video_id)
            except ValueError as exc:
                raise entry.line.error("path", str(exc)) from None
            videos.append(TrainVideo(entry.video_id, files.get(entry.relpath), label_of(category),
                                     category, self.video_fps()))
        return videos

    def read_rows(self, root: Path) -> list[SampleRow]:
        s = self.settings
        ann_path = find_file(root, s.annotation, ("annotations.txt",))
        if ann_path is None:
            raise TaskDataError(f"{root}: no annotations.txt found; set 'annotation'")
        annotations = read_xd_annotations(ann_path)
        index_path = find_file(root, s.index or s.test_list, ("anomaly_test.txt",))
        folder = root / "videos" if (root / "videos").is_dir() else root
        videos = VideoFiles(folder)
        index: dict[str, IndexRow] = {}
        if index_path is not None:
            index = {r.video_id: r for r in read_lavad_index(index_path)}
            order = list(index)
            self.sources.update(order=str(index_path), frame_counts=str(index_path))
            videos = VideoFiles(root)
        elif videos:
            order = videos.ids()
            self.sources.update(order=str(folder), frame_counts="videos")
        else:
            raise TaskDataError(f"{root}: no test list (anomaly_test.txt) and no video files")
        self.sources["annotation"] = str(ann_path)
        tested = set(order)
        extra = [v for v in annotations if v not in tested]
        if extra:
            raise TaskDataError(f"{ann_path}:{annotations[extra[0]].lineno}: annotated video "
                                f"{extra[0]!r} is not a test video ({len(extra)} such)")
        rows = []
        for vid in order:
            where = (f"{index_path}:{index[vid].lineno}" if vid in index else str(folder))
            try:
                category = xd_category(vid)
            except ValueError as exc:
                raise TaskDataError(f"{where}: field 'name': {exc}") from None
            ann = annotations.get(vid)
            if (ann is None) != (category == NORMAL):
                raise TaskDataError(
                    f"{where}: field 'name': video {vid!r} is {category!r} by name but "
                    f"{'has no' if ann is None else 'has an'} entry in {ann_path}")
            if vid in index and index[vid].labels:
                normal_code = set(index[vid].labels) <= XD_INDEX_NORMAL
                if normal_code != (category == NORMAL):
                    raise TaskDataError(f"{where}: field 'label': {','.join(index[vid].labels)!r}"
                                        f" contradicts the name's category {category!r}")
            path = videos.get(vid)
            unreadable = None
            if vid in index:
                n, start = index[vid].num_frames, index[vid].start
            elif path is not None:
                (n, unreadable), start = frame_count(path), 0
            else:
                raise TaskDataError(f"video {vid!r}: no frame count and no video file")
            rows.append(SampleRow(vid, n, category, ann.intervals if ann else (), path, start,
                                  extra={"unreadable": unreadable} if unreadable else {}))
        return rows
