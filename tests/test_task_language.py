"""Language-side tasks on hand-made files: readers, errors and hand-computed metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks.base import TaskDataError
from tasks.score_import import score_external
from tasks.vad_reasoning_task import VadReasoningTask, detection_metrics, interval_iou
from tasks.vane_task import VaneTask
from tasks.vru_tasks import VruAccidentQaTask, accuracy_tables


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ABNORMAL = ("<think><step1>A street.</step1><step2>A man falls.</step2><step3>Falls are rare."
            "</step3><step4>He may be hurt.</step4></think><answer>The anomaly is <which>Fall"
            "</which>. <what>a man falls</what> during <when>[0.2, 0.6]</when> at <where>the "
            "centre</where> because <why>people walk</why>; <how>injury</how>.</answer>")
NORMAL = ("<think><step1>A street.</step1><step2>Nothing odd.</step2></think><answer>The "
          "video is <which>Normal</which>. <what>people walk</what> <why>usual</why></answer>")


def _reasoning_root(tmp_path: Path) -> Path:
    rows = [
        {"source": "UCF", "video": "a.mp4", "anomaly_type": "Fall", "path": "videos/a.mp4",
         "total_frames": 100, "start": 20, "end": 60, "think": ABNORMAL.split("<answer>")[0],
         "answer": "<answer>" + ABNORMAL.split("<answer>")[1]},
        {"source": "UCF", "video": "b.mp4", "anomaly_type": "Fight", "path": "videos/b.mp4",
         "total_frames": 200, "start": 100, "end": 200, "think": "<think>x</think>",
         "answer": "<answer><which>Fight</which></answer>"},
        {"source": "XD", "video": "c.mp4", "anomaly_type": "Normal", "path": "videos/c.mp4",
         "total_frames": 50, "think": NORMAL.split("<answer>")[0],
         "answer": "<answer>" + NORMAL.split("<answer>")[1]},
        {"source": "XD", "video": "d.mp4", "anomaly_type": "Normal", "path": "videos/d.mp4",
         "total_frames": 50, "think": "<think>y</think>", "answer": "<answer>z</answer>"},
    ]
    _jsonl(tmp_path / "Vad-Reasoning-SFT-test.jsonl", rows)
    return tmp_path


def test_vad_reasoning_detection_by_hand(tmp_path: Path) -> None:
    root = _reasoning_root(tmp_path)
    task = VadReasoningTask()
    samples = task.load(root, "test")
    assert [s.video_id for s in samples] == ["a", "b", "c", "d"]
    assert samples[0].references["reasoning"]["interval"] == [0.2, 0.6]
    assert all("unreadable" in s.extra for s in samples)  # no video files here
    results = _jsonl(tmp_path / "results.jsonl", [
        {"video": "a.mp4", "output": ABNORMAL},  # Abnormal, [0.2, 0.6]: IoU 1
        {"video": "b.mp4", "output": "<which>Normal</which>"},  # wrong class: IoU 0
        {"video": "c.mp4", "output": "no tags at all"},  # missing tag -> Abnormal, wrong
        {"video": "d.mp4", "output": NORMAL},  # correct Normal: IoU 1
    ])
    res = score_external(task, samples, results, "vad-r1-results")
    m = res["metrics"]
    # y_true = [Ab, Ab, N, N], y_pred = [Ab, N, Ab, N]: TP 1, FN 1, FP 1, TN 1
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["miou"] == pytest.approx(0.5)  # (1 + 0 + 0 + 1) / 4
    assert m["r03"] == m["r05"] == m["r07"] == pytest.approx(0.5)
    assert res["unparsed"] == 1
    # the video that said "no tags at all" (>= 5 chars) is scored; identical text -> BLEU-1 1
    assert 0 < m["bleu_1"] < 1 and 0 < m["meteor"] < 1 and 0 < m["rouge1_f"] < 1


def test_vad_reasoning_short_outputs_score_zero(tmp_path: Path) -> None:
    root = _reasoning_root(tmp_path)
    task = VadReasoningTask()
    samples = task.load(root, "test")
    preds = {s.video_id: {"video_id": s.video_id, "responses": {"reasoning": "abc"}}
             for s in samples}
    m = task.evaluate(samples, preds)["metrics"]
    assert m["bleu_1"] == m["meteor"] == 0.0
    assert m.get("rouge1_f", 0.0) == 0.0


def test_interval_iou_by_hand() -> None:
    assert interval_iou((0.2, 0.6), (0.4, 0.8)) == pytest.approx(0.2 / 0.6)
    assert interval_iou((0.0, 0.0), (0.0, 0.0)) == 0.0
    m = detection_metrics([("Abnormal", (0.0, 0.5))], [("Abnormal", (0.25, 0.5))])
    assert m["miou"] == pytest.approx(0.5) and m["r05"] == 1.0 and m["r07"] == 0.0


def test_vad_reasoning_bad_rows_name_the_line(tmp_path: Path) -> None:
    _jsonl(tmp_path / "Vad-Reasoning-SFT-test.jsonl", [
        {"video": "a.mp4", "anomaly_type": "Fall", "total_frames": 10, "think": "",
         "answer": ""}])
    with pytest.raises(TaskDataError, match=r"jsonl:1: abnormal video needs a numeric 'start'"):
        VadReasoningTask().load(tmp_path, "test")


def _vane_root(tmp_path: Path) -> Path:
    for group, cat, answers in (("Real-World", "StreetCam", ["B)", "A"]),
                                ("AI-Generated", "SoraLike", ["C"])):
        base = tmp_path / group / cat
        frames = base / "video_frames" / "clip_1"
        frames.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(frames / f"{i:04d}.jpg")
        (base / "video_qa").mkdir()
        qa = [{"Q": f"What is odd?\nA) a car\nB) a man falls\nC) smoke\nD) nothing {k}",
               "A": a} for k, a in enumerate(answers)]
        (base / "video_qa" / "clip_1_qa.txt").write_text(repr(qa), encoding="utf-8")
    return tmp_path


def test_vane_reads_layout_and_scores_per_category(tmp_path: Path) -> None:
    task = VaneTask()
    samples = task.load(_vane_root(tmp_path), "test")
    assert [s.video_id for s in samples] == ["AI-Generated/SoraLike/clip_1",
                                             "Real-World/StreetCam/clip_1"]
    street = samples[1]
    assert street.references == {"0": "B", "1": "A"}
    assert [o[0] for o in street.queries[0].options] == ["A", "B", "C", "D"]
    preds = {
        samples[0].video_id: {"responses": {"0": "The answer is (D)."}},
        street.video_id: {"responses": {"0": "B) a man falls", "1": "Based on the video, "
                                                                   "nothing."}},
    }
    res = task.evaluate(samples, preds)
    m = res["metrics"]
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["acc_streetcam"] == pytest.approx(0.5) and m["acc_soralike"] == 0.0
    assert res["unparsed"] == 1  # "Based on ..." must not read as B


def test_vane_exact_rule_is_the_official_one(tmp_path: Path) -> None:
    task = VaneTask(match="exact")
    samples = task.load(_vane_root(tmp_path), "test")
    preds = {samples[1].video_id: {"responses": {"0": "B)", "1": "A. a car"}}}
    m = task.evaluate(samples, preds)["metrics"]
    assert m["acc_streetcam"] == pytest.approx(0.5)  # "A. a car" is not one character


def test_vane_bad_qa_file_is_named(tmp_path: Path) -> None:
    root = _vane_root(tmp_path)
    bad = root / "Real-World/StreetCam/video_qa/clip_1_qa.txt"
    bad.write_text("[{'Q': 'x'}]", encoding="utf-8")
    with pytest.raises(TaskDataError, match="clip_1_qa.txt: item 0"):
        VaneTask().load(root, "test")


def test_accuracy_tables_by_hand() -> None:
    hits = {("S1", "c1"): [True, False], ("S2", "c1"): [True, True],
            ("S1", "c2"): [False], ("S2", "c2"): [True]}
    out = accuracy_tables(hits)
    m = out["metrics"]
    assert m["acc_c1"] == pytest.approx(0.75) and m["acc_c2"] == pytest.approx(0.5)
    assert m["acc_avg"] == pytest.approx(0.625)
    assert m["acc_avg_S1"] == pytest.approx(0.25) and m["acc_avg_S2"] == pytest.approx(1.0)


def test_vru_reader_errors_name_the_field(tmp_path: Path) -> None:
    d = tmp_path / "MetaData/DoTA"
    d.mkdir(parents=True)
    (d / "DoTA_VQA_annotation.json").write_text(json.dumps(
        {"./VRU_videos/DoTA/VRU_1.mp4": {"location": {"question": "Where?", "GT": "A"}}}))
    with pytest.raises(TaskDataError, match="DoTA_VQA_annotation.json: video '.*VRU_1.mp4': "
                                            "category 'location': field 'options'"):
        VruAccidentQaTask().load(tmp_path, "test")


def test_task_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="match must be one of"):
        VruAccidentQaTask(match="fuzzy")
    with pytest.raises(ValueError, match="unknown setting"):
        VaneTask(levle="clip")
    with pytest.raises(ValueError, match="judge=true needs free-text answers"):
        VaneTask(judge=True)
