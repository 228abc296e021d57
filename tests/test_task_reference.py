"""Loading the real public annotation files: counts checked against independent computations."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tasks.base import NORMAL
from tasks.ucf_tasks import MsadTask, UcfCrimeTask, UcfFormatTask
from tasks.xd_task import XdViolenceTask


def derived(path: Path) -> list[tuple[str, int, list[tuple[int, int]]]]:
    """(video, n_frames, intervals) rows of a DERIVED_*_frame_counts.tsv."""
    rows = []
    with path.open(encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for row in reader:
            pairs = [tuple(int(x) for x in p.split(",")) for p in row[-1].split(";") if p]
            rows.append((row[0], int(row[1]), pairs))
    return rows


def count_anomalous(n: int, intervals: list[tuple[int, int]]) -> int:
    """Frames f in [0, n) with s <= f <= e for some interval (a set, independent of the code)."""
    return len({f for s, e in intervals for f in range(s, min(e, n - 1) + 1)})


def test_ucf_crime_describe(reference_dir: Path) -> None:
    task = UcfCrimeTask()
    samples = task.load(reference_dir / "ucf_crime", "test")
    d = task.describe(samples)
    assert (d["videos"], d["frames"]) == (290, 1_111_808)
    assert (d["anomalous_videos"], d["normal_videos"]) == (140, 150)
    rows = derived(reference_dir / "ucf_crime/DERIVED_ucf_test_frame_counts.tsv")
    assert d["anomalous_frames"] == sum(count_anomalous(n, iv) for _, n, iv in rows)
    assert {s.video_id: s.num_frames for s in samples} == {v: n for v, n, _ in rows}
    assert sum(len(s.intervals) for s in samples) == 156
    assert len(d["per_class"]) == 14 and d["per_class"][NORMAL]["anomalous_frames"] == 0
    assert d["protocol"]["fps"] == 30.0 and d["protocol"]["label_convention"] == "inclusive"


def test_ucf_exclusive_convention_counts_one_frame_less_per_interval(reference_dir: Path) -> None:
    inclusive = UcfCrimeTask().load(reference_dir / "ucf_crime", "test")
    exclusive = UcfCrimeTask(label_convention="exclusive").load(reference_dir / "ucf_crime",
                                                                "test")
    clipped = sum(1 for s in inclusive for _, e in s.intervals if e >= s.num_frames)
    assert clipped == 7  # intervals ending at or after the last frame
    diff = sum(int(a.labels.sum()) - int(b.labels.sum())  # type: ignore[union-attr]
               for a, b in zip(inclusive, exclusive, strict=True))
    assert diff == 156 - clipped
    assert all(not s.end_inclusive for s in exclusive)


def test_ucf_frame_counts_from_urdmu_index_and_official_files(reference_dir: Path) -> None:
    root = reference_dir / "ucf_crime"
    task = UcfFormatTask(annotation="sultani/Temporal_Anomaly_Annotation.txt",
                         index="urdmu/UCF_Annotation.txt", test_list="vadclip/Anomaly_Test.txt")
    samples = task.load(root, "test")
    assert task.describe(samples)["frames"] == 1_111_808
    assert [s.video_id for s in samples][:2] == ["Abuse028_x264", "Abuse030_x264"]  # list order
    assert task.protocol()["sources"]["frame_counts"].endswith("urdmu/UCF_Annotation.txt")


def test_xd_violence_describe(reference_dir: Path) -> None:
    task = XdViolenceTask()
    samples = task.load(reference_dir / "xd_violence", "test")
    d = task.describe(samples)
    assert (d["videos"], d["frames"], d["anomalous_videos"]) == (800, 2_335_801, 500)
    rows = derived(reference_dir / "xd_violence/DERIVED_xd_test_frame_counts.tsv")
    assert d["anomalous_frames"] == sum(count_anomalous(n, iv) for _, n, iv in rows)
    assert d["protocol"]["fps"] == 24.0
    multi = [s for s in samples if "," in s.category]
    assert multi and all(s.is_anomalous for s in multi)


def test_msad_describe(reference_dir: Path) -> None:
    task = MsadTask()
    samples = task.load(reference_dir / "msad", "test")
    d = task.describe(samples)
    assert (d["videos"], d["anomalous_videos"], d["normal_videos"]) == (240, 120, 120)
    assert "Object Falling" in d["per_class"] and "Traffic Accident" in d["per_class"]
    assert MsadTask.splits == ("test",)
    with pytest.raises(ValueError, match="no split 'sample'"):
        task.load(None, "sample")
