"""FrameTask.load_train: training videos with video-level labels (official list, sample world,
errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.registry import TASKS
from tasks.base import NORMAL, TaskDataError
from tasks.complexvad_task import ComplexVadTask
from tasks.frame_task import FrameTask
from tasks.training import TrainVideo, is_normal_name, ucf_train_category
from tasks.ucf_tasks import MsadTask, UcfCrimeTask, UcfFormatTask
from tasks.xd_task import XdViolenceTask

UCF_ANOMALY_CLASSES = {"Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion",
                       "Fighting", "RoadAccidents", "Robbery", "Shooting", "Shoplifting",
                       "Stealing", "Vandalism"}
#: The sample world's native labels of normal videos (UCF, XD, ComplexVAD).
NORMAL_LABELS = {"Normal", "A", "normal"}


# -- the official UCF-Crime training list ---------------------------------------------------
def test_official_sultani_train_list(reference_dir: Path) -> None:
    task = UcfCrimeTask()
    videos = task.load_train(reference_dir / "ucf_crime/sultani", "test")
    assert len(videos) == 1610
    assert all(isinstance(v, TrainVideo) for v in videos)
    normal = [v for v in videos if v.label == 0]
    assert len(normal) == 800 and {v.category for v in normal} == {NORMAL}
    assert all(v.video_id.startswith("Normal_Videos") for v in normal)
    anomalous = [v for v in videos if v.label == 1]
    assert len(anomalous) == 810
    assert {v.category for v in anomalous} == UCF_ANOMALY_CLASSES
    assert videos[0].video_id == "Abuse001_x264" and videos[-1].video_id == "Vandalism050_x264"
    by_line = {i + 1: v for i, v in enumerate(videos)}  # the file has no blank lines
    picked = {1: ("Abuse001_x264", 1, "Abuse"), 765: ("Stealing114_x264", 1, "Stealing"),
              766: ("Normal_Videos001_x264", 0, NORMAL), 1565: ("Normal_Videos950_x264", 0, NORMAL),
              1566: ("Vandalism001_x264", 1, "Vandalism")}
    for lineno, expected in picked.items():
        v = by_line[lineno]
        assert (v.video_id, v.label, v.category) == expected
    # no video files there: paths unknown, frame counts unknown, fps the protocol constant
    assert all(v.path is None and v.num_frames == 0 and v.fps == 30.0 for v in videos)
    assert task.train_sources["train_list"].endswith("Anomaly_Train.txt")
    assert "train_list" not in task.sources  # the test protocol's sources are left alone


def test_official_list_by_setting_and_name_rule(reference_dir: Path) -> None:
    """``train_list`` names the file; ``category_from="name"`` gives the same classes here."""
    by_folder = UcfCrimeTask().load_train(reference_dir / "ucf_crime", "test")
    by_name = UcfFormatTask(category_from="name", fps=25,
                            train_list="sultani/Anomaly_Train.txt",
                            ).load_train(reference_dir / "ucf_crime", "test")
    assert [(v.video_id, v.category, v.label) for v in by_name] == [
        (v.video_id, v.category, v.label) for v in by_folder]
    assert {v.fps for v in by_name} == {25.0}


def test_ucf_train_category_rules() -> None:
    normal = ("Normal",)
    assert ucf_train_category("Abuse/Abuse001_x264.mp4", "annotation", normal) == "Abuse"
    assert ucf_train_category("Abuse001_x264.mp4", "annotation", normal) == "Abuse"
    assert ucf_train_category("Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4",
                              "annotation", normal) == NORMAL
    assert ucf_train_category("Normal_Videos001_x264.mp4", "name", normal) == NORMAL
    assert ucf_train_category("Normal/Video7.mp4", "annotation", normal) == NORMAL
    assert ucf_train_category("Background/clip_3.mp4", "annotation", ("Background",)) == NORMAL
    assert ucf_train_category("Object_falling_3.mp4", "name", ("Normal", "MSAD")) == (
        "Object Falling")
    assert ucf_train_category("MSAD_normal_training_1.mp4", "name", ("Normal", "MSAD")) == NORMAL
    assert is_normal_name("Training_Normal_Videos_Anomaly") and is_normal_name("normal7")
    assert not is_normal_name("Abnormal_3") and not is_normal_name("Abnormality001_x264")


def test_msad_train_list_uses_the_name_rule(tmp_path: Path) -> None:
    (tmp_path / "Anomaly_Train.txt").write_text(
        "Object_falling_3.mp4\nMSAD_normal_training_1.mp4\nPeople_falling_12.mp4\n")
    videos = MsadTask().load_train(tmp_path, "test")
    assert [(v.video_id, v.label, v.category) for v in videos] == [
        ("Object_falling_3", 1, "Object Falling"), ("MSAD_normal_training_1", 0, NORMAL),
        ("People_falling_12", 1, "People Falling")]


# -- the sample world ------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["ucf_crime", "xd_violence", "complexvad"])
def test_sample_world_train_videos(dataset: str) -> None:
    """Every listed training video exists; labels are the planned ones (catalog and meta.json)."""
    sample_world = pytest.importorskip("harness.sample_world")
    from harness.sample_world.catalog import plan

    root = sample_world.ensure_sample(dataset)
    task: FrameTask = TASKS.get(dataset)()  # type: ignore[operator]
    videos = task.load_train(None, "sample")
    planned = [s for s in plan(dataset) if s.split == "train"]
    assert [v.video_id for v in videos] == [s.name for s in planned]  # list order = plan order
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    train_meta = {Path(m["path"]).stem: m for m in meta["videos"] if m["split"] == "train"}
    assert set(train_meta) == {v.video_id for v in videos}
    for v, spec in zip(videos, planned, strict=True):
        assert v.path is not None and v.path.is_file()
        assert v.path.resolve() == (root / train_meta[v.video_id]["path"]).resolve()
        assert v.label == int(spec.anomalous) == int(train_meta[v.video_id]["label"]
                                                      not in NORMAL_LABELS)
        assert (v.category == NORMAL) == (v.label == 0)
        assert v.fps == task.fps
    assert {v.label for v in videos} == {0, 1}
    if dataset == "ucf_crime":
        assert all(v.category == (NORMAL if s.kind is None else s.label)
                   for v, s in zip(videos, planned, strict=True))
        assert all(v.num_frames == 0 for v in videos)
    if dataset == "complexvad":
        assert all(v.num_frames == train_meta[v.video_id]["num_frames"] for v in videos)


def test_sample_world_xd_categories() -> None:
    pytest.importorskip("harness.sample_world")
    videos = XdViolenceTask().load_train(None, "sample")
    cats = {v.video_id.rsplit("_label_", 1)[1]: v.category for v in videos}
    assert cats == {"B1-0-0": "Fighting", "B2-0-0": "Shooting", "B4-0-0": "Riot",
                    "B5-0-0": "Abuse", "B6-0-0": "Car accident", "G-0-0": "Explosion",
                    "A": NORMAL}
    assert all(v.fps == 24.0 for v in videos)


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("task", "names"), [
    (UcfCrimeTask(), "Anomaly_Train.txt"),
    (XdViolenceTask(), "train_list.txt"),
    (ComplexVadTask(), "complexvad_train.json"),
])
def test_missing_train_list(tmp_path: Path, task: FrameTask, names: str) -> None:
    with pytest.raises(TaskDataError) as info:
        task.load_train(tmp_path, "test")
    msg = str(info.value)
    assert str(tmp_path) in msg and names in msg and "'train_list'" in msg


def test_train_list_setting_must_exist(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match="file not found"):
        UcfCrimeTask(train_list="lists/train.txt").load_train(tmp_path, "test")


def test_task_without_training_list_says_so(tmp_path: Path) -> None:
    class NoTrain(FrameTask):
        name = "no_train"

        def read_rows(self, root: Path) -> list:
            return []

    with pytest.raises(TaskDataError, match=r"task 'no_train' has no training list"):
        NoTrain().load_train(tmp_path, "test")


def test_data_root_is_required_outside_the_sample_split() -> None:
    with pytest.raises(TaskDataError, match="data root"):
        UcfCrimeTask().load_train(None, "test")
    with pytest.raises(ValueError, match="no split 'sample'"):
        MsadTask().load_train(None, "sample")


def test_malformed_ucf_line(tmp_path: Path) -> None:
    path = tmp_path / "Anomaly_Train.txt"
    path.write_text("Abuse/Abuse001_x264.mp4\n\nAbuse/Abuse002_x264.mp4 Abuse\n")
    with pytest.raises(TaskDataError, match=r"Anomaly_Train\.txt:3: field 'path'"):
        UcfCrimeTask().load_train(tmp_path, "test")


def test_malformed_xd_name(tmp_path: Path) -> None:
    (tmp_path / "train_list.txt").write_text(
        "train/Film__#1_label_A.mp4\ntrain/Film__#2_label_Q9-0-0.mp4\n")
    with pytest.raises(TaskDataError, match=r"train_list\.txt:2: field 'path'.*Q9"):
        XdViolenceTask().load_train(tmp_path, "test")
    (tmp_path / "train_list.txt").write_text("Film__#1_label_A\nFilm__#2\n")
    with pytest.raises(TaskDataError, match=r"train_list\.txt:2: .*no '_label_' part"):
        XdViolenceTask().load_train(tmp_path, "test")


@pytest.mark.parametrize(("task", "file", "text"), [
    (UcfCrimeTask(), "Anomaly_Train.txt",
     "Abuse/Abuse001_x264.mp4\nArrest/Arrest001_x264.mp4\nOther/Abuse001_x264.avi\n"),
    (XdViolenceTask(), "train_list.txt", "a_label_A.mp4\nb_label_B1-0-0\ntrain/a_label_A.mp4\n"),
])
def test_duplicate_ids(tmp_path: Path, task: FrameTask, file: str, text: str) -> None:
    (tmp_path / file).write_text(text)
    with pytest.raises(TaskDataError, match=rf"{file}:3: field 'path'.*already listed on line 1"):
        task.load_train(tmp_path, "test")


def test_empty_list(tmp_path: Path) -> None:
    (tmp_path / "Anomaly_Train.txt").write_text("\n  \n")
    with pytest.raises(TaskDataError, match="training list is empty"):
        UcfCrimeTask().load_train(tmp_path, "test")


def complexvad_train(videos: list[dict]) -> str:
    return json.dumps({"format": "vad-eval/complexvad-v1", "fps": 30, "videos": videos})


def test_complexvad_train_labels_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "complexvad_train.json"
    path.write_text(complexvad_train([
        {"name": "t1", "num_frames": 20, "label": "normal"},
        {"name": "t2", "num_frames": 30, "label": "anomalous", "fps": 15},
        {"name": "t3", "num_frames": 40, "label": "anomalous",
         "anomalies": [{"start": 1, "end": 5, "type": "push"}]}]))
    videos = ComplexVadTask().load_train(tmp_path, "test")
    assert [(v.video_id, v.label, v.category, v.num_frames, v.fps, v.path) for v in videos] == [
        ("t1", 0, NORMAL, 20, 30.0, None), ("t2", 1, "Anomaly", 30, 15.0, None),
        ("t3", 1, "push", 40, 30.0, None)]
    path.write_text(complexvad_train([{"name": "t1", "num_frames": 20, "label": "normal"},
                                      {"name": "t1", "num_frames": 20, "label": "normal"}]))
    with pytest.raises(TaskDataError, match=r"videos\[1\]\.name.*repeated"):
        ComplexVadTask().load_train(tmp_path, "test")
    path.write_text(complexvad_train([{"name": "t1", "num_frames": 20, "label": "normal",
                                       "anomalies": [{"start": 1, "end": 2}]}]))
    with pytest.raises(TaskDataError, match=r"videos\[0\]\.anomalies"):
        ComplexVadTask().load_train(tmp_path, "test")


def test_video_files_are_found_like_test_videos(tmp_path: Path) -> None:
    """The listed path, else the one file with that id under the root, else None."""
    for rel in ("Abuse/Abuse001_x264.mp4", "elsewhere/Arrest001_x264.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "Anomaly_Train.txt").write_text(
        "Abuse/Abuse001_x264.mp4\nArrest/Arrest001_x264.mp4\nArson/Arson001_x264.mp4\n")
    videos = UcfCrimeTask().load_train(tmp_path, "test")
    assert [v.path for v in videos] == [tmp_path / "Abuse/Abuse001_x264.mp4",
                                        tmp_path / "elsewhere/Arrest001_x264.mp4", None]
