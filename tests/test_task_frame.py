"""FrameTask: registry, settings, loading native layouts (with videos), evaluate, describe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import auc, roc_curve

from harness.registry import TASKS
from tasks.base import NORMAL, TaskDataError, VideoSample
from tasks.complexvad_task import ComplexVadTask
from tasks.frame_task import SampleRow
from tasks.records import ScoreFormatError, encode_rle
from tasks.ucf_tasks import UcfCrimeTask, UcfFormatTask, name_category
from tasks.xd_task import XdViolenceTask
from tests.videos import write_counting_video


def test_catalog_registers_every_task() -> None:
    expected = {"ucf_crime": 30.0, "xd_violence": 24.0, "complexvad": 30.0, "msad": 30.0,
                "ucf_format": 30.0}
    for name, fps in expected.items():
        task = TASKS.get(name)()  # type: ignore[operator]
        assert task.name == name and task.kind == "frame" and task.fps == fps
        assert task.protocol()["window"]["window_frames"] == int(10 * fps)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        UcfCrimeTask(label_conventoin="exclusive")
    with pytest.raises(ValueError, match="label_convention"):
        UcfCrimeTask(label_convention="half-open")
    with pytest.raises(ValueError, match="category_from"):
        UcfFormatTask(category_from="folder")
    task = UcfCrimeTask(fps=25, window={"frames_per_window": 8, "sampler": "arange"})
    proto = task.protocol()
    assert proto["fps"] == 25.0 and proto["window"]["frames_per_window"] == 8
    assert json.loads(json.dumps(proto)) == proto


def samples_and_predictions() -> tuple[list[VideoSample], dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    task = UcfCrimeTask()
    samples = []
    for i, (cat, iv) in enumerate([("Abuse", ((3, 9),)), ("Riot", ((0, 4), (20, 25))),
                                   (NORMAL, ()), (NORMAL, ()), ("Abuse", ((10, 40),))]):
        samples.append(task._sample(SampleRow(f"v{i}", 30 + 5 * i, cat, iv)))
    preds = {s.video_id: {"video_id": s.video_id,
                          "scores": (rng.random(s.num_frames) + 0.4 * s.labels).tolist()}
             for s in samples}
    y = np.concatenate([s.labels for s in samples])
    s = np.concatenate([preds[x.video_id]["scores"] for x in samples])
    return samples, preds, y, s


def test_evaluate_pools_frames_and_reports_everything() -> None:
    samples, preds, y, s = samples_and_predictions()
    task = UcfCrimeTask(bootstrap=100, seed=1)
    preds["v4"] = {"video_id": "v4", "scores": encode_rle(np.asarray(preds["v4"]["scores"])),
                   "step_scores": {"step1": [0.5] * samples[4].num_frames}}
    result = task.evaluate(samples, preds)
    m = result["metrics"]
    fpr, tpr, _ = roc_curve(y, s)
    assert m["roc_auc"] == pytest.approx(auc(fpr, tpr), abs=1e-12)
    assert (m["n_videos"], m["n_frames"], m["missing_videos"]) == (5, len(y), 0)
    assert m["n_anomalous_frames"] == int(y.sum())
    assert set(result["per_class"]) == {"Abuse", "Riot"}
    assert set(result["ci95"]) == {"roc_auc", "pr_auc", "average_precision",
                                   "roc_auc_anomalous_videos", "video_roc_auc"}
    assert result["steps"]["step1"]["n_videos"] == 1
    assert result["steps"]["step1"]["missing_videos"] == 4
    assert result["protocol"]["label_convention"] == "inclusive"
    json.dumps(result, allow_nan=False)


def test_missing_videos_are_counted_and_listed() -> None:
    samples, preds, _, _ = samples_and_predictions()
    del preds["v1"], preds["v3"]
    result = UcfCrimeTask(bootstrap=0).evaluate(samples, preds)
    assert result["metrics"]["missing_videos"] == 2
    assert result["missing_video_ids"] == ["v1", "v3"]
    assert result["metrics"]["n_videos"] == 3
    assert result["ci95"] == {}
    empty = UcfCrimeTask(bootstrap=10).evaluate(samples, {})
    assert empty["metrics"]["n_videos"] == 0 and empty["metrics"]["roc_auc"] is None
    json.dumps(empty, allow_nan=False)


def test_wrong_score_length_is_an_error_naming_both_lengths() -> None:
    samples, preds, _, _ = samples_and_predictions()
    preds["v2"]["scores"] = preds["v2"]["scores"][:-1]
    with pytest.raises(ScoreFormatError, match=r"video 'v2'.*39 scores.*40 frames"):
        UcfCrimeTask(bootstrap=0).evaluate(samples, preds)


def test_name_category() -> None:
    assert name_category("Object_falling_3") == "Object Falling"
    assert name_category("RoadAccidents001_x264") == "RoadAccidents"
    assert name_category("Traffic_accident_12") == "Traffic Accident"


def ucf_layout(root: Path, normal_class: str = "Normal") -> None:
    write_counting_video(root / "Abuse/Abuse001_x264.mp4", 40)
    write_counting_video(root / "Testing_Normal_Videos_Anomaly/Normal_Videos_001_x264.mp4", 25)
    (root / "Anomaly_Test.txt").write_text(
        "Abuse/Abuse001_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_001_x264.mp4\n")
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse001_x264.mp4  Abuse  10  39  -1  -1\n"
        f"Normal_Videos_001_x264.mp4  {normal_class}  -1  -1  -1  -1\n")


def test_ucf_layout_with_videos_counts_frames(tmp_path: Path) -> None:
    ucf_layout(tmp_path)
    task = UcfCrimeTask()
    samples = task.load(tmp_path, "sample")
    assert [(s.video_id, s.num_frames, s.category) for s in samples] == [
        ("Abuse001_x264", 40, "Abuse"), ("Normal_Videos_001_x264", 25, NORMAL)]
    assert samples[0].path == tmp_path / "Abuse/Abuse001_x264.mp4"
    assert int(samples[0].labels.sum()) == 30  # type: ignore[union-attr]
    assert task.protocol()["sources"]["frame_counts"] == "videos"


def test_ucf_unknown_normal_class_is_an_error(tmp_path: Path) -> None:
    ucf_layout(tmp_path, normal_class="Background")
    with pytest.raises(TaskDataError, match=r":2: field 'class'.*'Background'"):
        UcfCrimeTask().load(tmp_path, "test")
    assert len(UcfFormatTask(normal_classes=["Background"]).load(tmp_path, "test")) == 2


def test_data_root_is_required_for_test_split() -> None:
    with pytest.raises(TaskDataError, match="data root"):
        UcfCrimeTask().load(None, "test")


def xd_layout(root: Path, annotate_second: bool = True) -> None:
    write_counting_video(root / "videos/Film__#1_label_B1-0-0.mp4", 30, fps=24)
    write_counting_video(root / "videos/Film__#2_label_A.mp4", 20, fps=24)
    write_counting_video(root / "videos/Film__#3_label_B2-G-0.mp4", 35, fps=24)
    write_counting_video(root / "train/Film__#9_label_A.mp4", 10, fps=24)
    lines = ["Film__#1_label_B1-0-0 3 8 12 15"]
    if annotate_second:
        lines.append("Film__#3_label_B2-G-0.mp4 0 34")
    (root / "annotations.txt").write_text("\n".join(lines))


def test_xd_layout_from_videos_folder(tmp_path: Path) -> None:
    xd_layout(tmp_path)
    task = XdViolenceTask()
    samples = task.load(tmp_path, "sample")
    assert [(s.video_id, s.num_frames, s.category) for s in samples] == [
        ("Film__#1_label_B1-0-0", 30, "Fighting"), ("Film__#2_label_A", 20, NORMAL),
        ("Film__#3_label_B2-G-0", 35, "Shooting,Explosion")]
    assert [int(s.labels.sum()) for s in samples] == [6 + 4, 0, 35]  # type: ignore[union-attr]
    assert all(s.fps == 24.0 for s in samples)


def test_xd_anomalous_name_without_annotation_is_an_error(tmp_path: Path) -> None:
    xd_layout(tmp_path, annotate_second=False)
    with pytest.raises(TaskDataError, match=r"label_B2-G-0.*no entry"):
        XdViolenceTask().load(tmp_path, "test")


def test_complexvad_file_sets_label_convention(tmp_path: Path) -> None:
    doc = {"format": "vad-eval/complexvad-v1", "fps": 30, "end_inclusive": False, "videos": [
        {"name": "a", "num_frames": 20, "label": "anomalous",
         "anomalies": [{"start": 5, "end": 10, "type": "push"}]},
        {"name": "b", "num_frames": 10, "label": "normal"}]}
    (tmp_path / "complexvad_test.json").write_text(json.dumps(doc))
    task = ComplexVadTask()
    samples = task.load(tmp_path, "test")
    assert task.protocol()["label_convention"] == "exclusive"
    assert int(samples[0].labels.sum()) == 5  # type: ignore[union-attr]
    forced = ComplexVadTask(label_convention="inclusive")
    assert int(forced.load(tmp_path, "test")[0].labels.sum()) == 6  # type: ignore[union-attr]


@pytest.mark.parametrize("dataset", ["ucf_crime", "xd_violence", "complexvad"])
def test_sample_world_loads_with_meta_frame_counts(dataset: str) -> None:
    """``load(None, "sample")`` reads the generated native layout; frames match meta.json."""
    sample_world = pytest.importorskip("harness.sample_world")
    root = sample_world.ensure_sample(dataset)
    task = TASKS.get(dataset)()  # type: ignore[operator]
    samples = task.load(None, "sample")
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    tests = {Path(v["path"]).stem: v for v in meta["videos"] if v["split"] == "test"}
    assert {s.video_id: s.num_frames for s in samples} == {
        k: v["num_frames"] for k, v in tests.items()}
    assert all(s.path is not None and s.path.is_file() for s in samples)
    for s in samples:
        assert s.is_anomalous == (tests[s.video_id]["label"] not in ("Normal", "A", "normal"))
    result = task.evaluate(samples, {s.video_id: {"scores": s.labels.astype(float)}
                                     for s in samples})
    assert math.isclose(result["metrics"]["roc_auc"], 1.0)
