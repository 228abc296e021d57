"""``complexvad``: ComplexVAD test set in vad-eval's JSON format, fps constant 30.

The data root holds ``complexvad_test.json`` (``annotation`` overrides it) and the videos it
names; see :mod:`tasks.formats.complexvad` for the format. The file's ``end_inclusive`` sets
the label convention unless the ``label_convention`` setting overrides it; each video's ``fps``
is the window constant unless the ``fps`` setting overrides it.

Training videos (:meth:`~tasks.frame_task.FrameTask.load_train`): ``complexvad_train.json``
(``train_list`` overrides it), same format, video-level labels (an anomalous training video
may list no anomaly; the real dataset's training videos are all normal). Label, category,
path, frame count and fps come from the file as for test videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from tasks.base import TaskDataError
from tasks.formats.complexvad import TEST_FILE, TRAIN_FILE, read_complexvad
from tasks.frame_task import FrameTask, SampleRow, find_file
from tasks.training import TrainVideo, label_of


class ComplexVadTask(FrameTask):
    """ComplexVAD frame-level VAD (interaction anomalies in one campus scene)."""

    name: ClassVar[str] = "complexvad"
    dataset: ClassVar[str] = "complexvad"
    description: ClassVar[str] = "ComplexVAD frame-level VAD (vad-eval JSON annotations; AUC)"
    default_fps: ClassVar[float] = 30.0
    sample_dataset: ClassVar[str | None] = "complexvad"

    def read_rows(self, root: Path) -> list[SampleRow]:
        path = find_file(root, self.settings.annotation, (TEST_FILE,))
        if path is None:
            raise TaskDataError(f"{root}: no {TEST_FILE} found; set 'annotation'")
        split = read_complexvad(path)
        self.file_convention = "inclusive" if split.end_inclusive else "exclusive"
        self.sources.update(annotation=str(path), order=str(path), frame_counts=str(path))
        return [SampleRow(v.video_id, v.num_frames, v.category, v.intervals, v.path, 0, v.fps,
                          {"anomaly_types": list(v.anomaly_types)} if v.anomaly_types else {})
                for v in split.videos]

    def read_train_rows(self, root: Path) -> list[TrainVideo]:
        path = self.find_train_list(root, (TRAIN_FILE,))
        split = read_complexvad(path, video_level=True)
        return [TrainVideo(v.video_id, v.path, label_of(v.category), v.category,
                           self.video_fps(v.fps), v.num_frames)
                for v in split.videos]
