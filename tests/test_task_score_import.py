"""External score files: segments-json, frames-json, frames-npy (.npy / .npz)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tasks.base import TaskDataError, VideoSample
from tasks.frame_task import SampleRow
from tasks.score_import import score_external, segments_to_frames
from tasks.ucf_tasks import UcfCrimeTask


@pytest.fixture()
def task_samples() -> tuple[UcfCrimeTask, list[VideoSample]]:
    task = UcfCrimeTask(bootstrap=0)
    rows = [SampleRow("Abuse001_x264", 10, "Abuse", ((4, 7),)),
            SampleRow("Normal_Videos_001_x264", 6)]
    return task, [task._sample(r) for r in rows]


def test_segments_inclusive_later_segment_wins() -> None:
    got = segments_to_frames({"0, 4": [0.1, "text"], "4, 9": [0.7, 0.2, "x"]}, 10, 0, "v")
    np.testing.assert_array_equal(got, [0.1] * 4 + [0.7] * 6)
    got = segments_to_frames({"0, 9": [0.3, 0.2, "x"]}, 10, 1, "v")
    np.testing.assert_array_equal(got, [0.2] * 10)


@pytest.mark.parametrize(("segments", "message"), [
    ({"0, 3": 0.1, "5, 9": 0.2}, "1 frame.*first frame 4"),
    ({"0, 10": 0.1}, "outside frames 0..9"),
    ({"0-9": 0.1}, "not 's, e'"),
    ({"0, 9": ["text only"]}, "no numeric score"),
])
def test_segment_errors_name_the_video(segments: dict, message: str) -> None:
    with pytest.raises(TaskDataError, match=f"vid 'X'.*{message}"):
        segments_to_frames(segments, 10, 0, "vid 'X'")


def test_segments_json_with_transform_and_rounding(tmp_path: Path, task_samples: tuple) -> None:
    task, samples = task_samples
    doc = {"config": {}, "vid_score": {
        "Abuse001_x264.mp4": {"0, 3": [-2.0, "t"], "4, 7": [1.23456, "t"], "8, 9": [-2.0, "t"]},
        "Normal_Videos_001_x264.mp4": {"0, 5": [0.0, "t"]},
        "Other.mp4": {"0, 1": [0.0, "t"]}}}
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(doc))
    result = score_external(task, samples, path, "segments-json", field=0, transform="sigmoid",
                            round_digits=2)
    assert result["metrics"]["roc_auc"] == pytest.approx(1.0)
    assert result["import"]["unused_keys"] == 1
    assert result["import"]["round_digits"] == 2


def test_frames_json_and_missing_video(tmp_path: Path, task_samples: tuple) -> None:
    task, samples = task_samples
    path = tmp_path / "frames.json"
    path.write_text(json.dumps({"vid_score": {"Abuse001_x264.mp4": [0.0] * 4 + [1.0] * 4
                                              + [0.0] * 2}}))
    result = score_external(task, samples, path, "frames-json")
    assert result["metrics"]["missing_videos"] == 1
    assert result["missing_video_ids"] == ["Normal_Videos_001_x264"]
    assert result["metrics"]["roc_auc"] == pytest.approx(1.0)
    path.write_text(json.dumps({"Abuse001_x264": [0.0] * 9}))
    with pytest.raises(ValueError, match=r"'Abuse001_x264'.*9 scores.*10 frames"):
        score_external(task, samples, path, "frames-json")


def test_frames_npy_vector_in_sample_order(tmp_path: Path, task_samples: tuple) -> None:
    task, samples = task_samples
    vec = np.concatenate([samples[0].labels * 0.9, np.full(6, 0.1)])
    np.save(tmp_path / "pred.npy", vec)
    result = score_external(task, samples, tmp_path / "pred.npy", "frames-npy")
    assert result["metrics"]["roc_auc"] == pytest.approx(1.0)
    np.save(tmp_path / "short.npy", vec[:-1])
    with pytest.raises(TaskDataError, match="16 frame scores"):
        score_external(task, samples, tmp_path / "short.npy", "frames-npy")


def test_frames_npz_per_video_and_no_pickles(tmp_path: Path, task_samples: tuple) -> None:
    task, samples = task_samples
    np.savez(tmp_path / "pred.npz", **{"Abuse001_x264.mp4": samples[0].labels * 1.0,
                                       "Normal_Videos_001_x264": np.zeros(6)})
    result = score_external(task, samples, tmp_path / "pred.npz", "frames-npy")
    assert result["metrics"]["n_videos"] == 2
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        score_external(task, samples, tmp_path / "obj.npy", "frames-npy")


def test_unknown_format_and_missing_file(tmp_path: Path, task_samples: tuple) -> None:
    task, samples = task_samples
    with pytest.raises(TaskDataError, match="unknown score format"):
        score_external(task, samples, tmp_path / "x.json", "csv")
    with pytest.raises(TaskDataError, match="not found"):
        score_external(task, samples, tmp_path / "x.json", "frames-json")
    with pytest.raises(TaskDataError, match="unknown transform"):
        score_external(task, samples, tmp_path / "x.json", "frames-json", transform="softmax")
