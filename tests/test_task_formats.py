"""Native format readers: real quirks accepted, malformed lines named by file, line, field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tasks.base import NORMAL, TaskDataError
from tasks.formats.complexvad import read_complexvad
from tasks.formats.lavad import read_lavad_index
from tasks.formats.ucf import read_frame_index, read_temporal_annotation, read_test_list
from tasks.formats.video import video_id
from tasks.formats.xd import read_xd_annotations, xd_category


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_ucf_annotation_whitespace_extension_and_padding(tmp_path: Path) -> None:
    path = write(tmp_path / "ann.txt",
                 "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \n"
                 "Arson011_x264\tArson 150 420 680 1267\r\n\n"
                 "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1")
    ann = read_temporal_annotation(path)
    assert list(ann) == ["Abuse028_x264", "Arson011_x264", "Normal_Videos_003_x264"]
    assert ann["Abuse028_x264"].intervals == ((165, 240),)
    assert ann["Arson011_x264"].intervals == ((150, 420), (680, 1267))
    assert ann["Arson011_x264"].lineno == 2
    assert ann["Normal_Videos_003_x264"].category == "Normal"
    assert ann["Normal_Videos_003_x264"].intervals == ()


@pytest.mark.parametrize(("line", "field"), [
    ("Abuse028_x264.mp4  Abuse  165  x40  -1  -1", "e1"),
    ("Abuse028_x264.mp4  Abuse  165  240  -1", "intervals"),
    ("Abuse028_x264.mp4  Abuse  240  165  -1  -1", "interval 1"),
    ("Abuse028_x264.mp4  Abuse  -1  165  -1  -1", "interval 1"),
    ("Abuse028_x264.mp4", None),
])
def test_ucf_annotation_errors_name_file_line_field(tmp_path: Path, line: str,
                                                    field: str | None) -> None:
    path = write(tmp_path / "Temporal_Anomaly_Annotation.txt",
                 "Abuse030_x264.mp4  Abuse  1275  1360  -1  -1\n" + line + "\n")
    with pytest.raises(TaskDataError) as err:
        read_temporal_annotation(path)
    msg = str(err.value)
    assert f"{path}:2:" in msg
    if field:
        assert repr(field) in msg


def test_repeated_video_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "A.mp4 Abuse 1 2 -1 -1\nA Abuse 3 4 -1 -1\n")
    with pytest.raises(TaskDataError, match=r"a\.txt:2: field 'name'.*line 1"):
        read_temporal_annotation(path)
    with pytest.raises(TaskDataError, match="not found"):
        read_temporal_annotation(tmp_path / "missing.txt")


def test_test_list_and_urdmu_frame_index(tmp_path: Path) -> None:
    lst = write(tmp_path / "Anomaly_Test.txt",
                "Abuse/Abuse028_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4")
    assert read_test_list(lst) == ["Abuse/Abuse028_x264.mp4",
                                   "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4"]
    idx = write(tmp_path / "UCF_Annotation.txt",
                "Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1 \n"
                "Testing_Normal_Videos_Anomaly/Normal_Videos_872_x264.mp4 530 Normal -1 -1 -1 -1\n")
    rows = read_frame_index(idx)
    assert rows["Arson022_x264"].num_frames == 8640
    assert rows["Arson022_x264"].annotation.intervals == ((3500, 4000),)
    bad = write(tmp_path / "bad.txt", "Arson/Arson022_x264.mp4 0 Arson 1 2 -1 -1\n")
    with pytest.raises(TaskDataError, match=r"bad\.txt:1: field 'n_frames'"):
        read_frame_index(bad)


def test_lavad_index_end_inclusive(tmp_path: Path) -> None:
    path = write(tmp_path / "anomaly_test.txt",
                 "Abuse028_x264 0 1411 0\nBad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6 0 1080 "
                 "2,1,6\n")
    rows = read_lavad_index(path)
    assert rows[0].num_frames == 1412
    assert rows[1].labels == ("2", "1", "6")
    bad = write(tmp_path / "bad.txt", "Abuse028_x264 0 1411 0\nAbuse030_x264 10 5 0\n")
    with pytest.raises(TaskDataError, match=r"bad\.txt:2: field 'end_frame'"):
        read_lavad_index(bad)


def test_xd_annotations_quirks(tmp_path: Path) -> None:
    path = write(tmp_path / "annotations.txt",
                 "v=S-7rRLrxnVQ__#1_label_B4-0-0 0 1517 1970 3038\n"
                 "v=U6MC8JJJZSY__#1_label_G-0-0.mp4 77 1430\n"
                 "v=p7kvQ4OpDgU__#1_label_B4-0-0 270 1370")  # no final newline
    ann = read_xd_annotations(path)
    assert list(ann) == ["v=S-7rRLrxnVQ__#1_label_B4-0-0", "v=U6MC8JJJZSY__#1_label_G-0-0",
                         "v=p7kvQ4OpDgU__#1_label_B4-0-0"]
    assert ann["v=S-7rRLrxnVQ__#1_label_B4-0-0"].intervals == ((0, 1517), (1970, 3038))
    bad = write(tmp_path / "bad.txt", "v=a__#1_label_B1-0-0 0 10\nv=b__#1_label_B1-0-0 5 9 12\n")
    with pytest.raises(TaskDataError, match=r"bad\.txt:2: field 'intervals'"):
        read_xd_annotations(bad)
    normal = write(tmp_path / "n.txt", "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A 0 9\n")
    with pytest.raises(TaskDataError, match="normal"):
        read_xd_annotations(normal)


def test_xd_categories() -> None:
    assert xd_category("v=S-7rRLrxnVQ__#1_label_B4-0-0") == "Riot"
    assert xd_category("Bad.Boys.II.2003__#00-06-42_00-10-00_label_B2-G-0") == "Shooting,Explosion"
    assert xd_category("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6.mp4") == \
        "Explosion,Shooting,Car accident"
    assert xd_category("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A") == NORMAL
    assert xd_category("x__#1_label_B1-B5-0") == "Fighting,Abuse"
    for bad in ("no_label_here", "x__#1_label_B3-0-0", "x__#1_label_A-B1-0"):
        with pytest.raises(ValueError):
            xd_category(bad)


def test_video_id_keeps_dotted_names() -> None:
    assert video_id("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A") == \
        "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"
    assert video_id("Abuse/Abuse028_x264.mp4") == "Abuse028_x264"
    assert video_id("G:\\UCF\\Abuse028_x264.AVI") == "Abuse028_x264"


def complexvad_doc(**over: object) -> dict:
    doc = {"format": "vad-eval/complexvad-v1", "fps": 30, "end_inclusive": True, "videos": [
        {"name": "test_001", "path": "videos/test_001.mp4", "num_frames": 240, "fps": 30,
         "label": "anomalous", "anomalies": [{"start": 50, "end": 120, "type": "push"}]},
        {"name": "test_002", "num_frames": 100, "label": "normal", "anomalies": []},
    ]}
    doc.update(over)
    return doc


def test_complexvad_reader(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos/test_001.mp4").write_bytes(b"")
    path = write(tmp_path / "complexvad_test.json", json.dumps(complexvad_doc()))
    split = read_complexvad(path)
    a, b = split.videos
    assert split.end_inclusive
    assert (a.video_id, a.num_frames, a.category, a.intervals) == ("test_001", 240, "push",
                                                                   ((50, 120),))
    assert a.path == tmp_path / "videos/test_001.mp4"
    assert (b.category, b.intervals, b.path, b.fps) == (NORMAL, (), None, 30.0)


@pytest.mark.parametrize(("change", "where"), [
    ({"format": "other"}, "format"),
    ({"videos": []}, "videos"),
    ({"fps": None}, "videos[1].fps"),
])
def test_complexvad_top_level_errors(tmp_path: Path, change: dict, where: str) -> None:
    doc = complexvad_doc(**change)
    if doc.get("fps") is None:
        del doc["fps"]
    path = write(tmp_path / "c.json", json.dumps(doc))
    with pytest.raises(TaskDataError, match=re.escape(f"c.json: field '{where}'")):
        read_complexvad(path)


@pytest.mark.parametrize(("video", "where"), [
    ({"label": "weird"}, "videos[0].label"),
    ({"num_frames": 0}, "videos[0].num_frames"),
    ({"num_frames": "240"}, "videos[0].num_frames"),
    ({"anomalies": []}, "videos[0].anomalies"),
    ({"anomalies": [{"start": 50, "end": 240}]}, "videos[0].anomalies[0].end"),
    ({"anomalies": [{"start": 50}]}, "videos[0].anomalies[0].end"),
    ({"label": "normal"}, "videos[0].anomalies"),
])
def test_complexvad_video_errors(tmp_path: Path, video: dict, where: str) -> None:
    doc = complexvad_doc()
    doc["videos"][0].update(video)  # type: ignore[index]
    path = write(tmp_path / "c.json", json.dumps(doc))
    with pytest.raises(TaskDataError, match=re.escape(f"field '{where}'")):
        read_complexvad(path)


def test_complexvad_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{\n "format": "vad-eval/complexvad-v1",\n "fps": ,\n}')
    with pytest.raises(TaskDataError, match=r"c\.json:3:"):
        read_complexvad(path)
