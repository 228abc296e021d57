"""Language-side tasks on the real public files: counts and published figures as reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tasks.formats import hivau
from tasks.hivau_task import HivauTask
from tasks.vru_tasks import VruAccidentQaTask


def _json_out(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


# README of VRU-Accident (and MANIFEST §5): category counts of Qwen2-VL-7B out of 1,000 each.
QWEN_CORRECT = {"weather_and_light": 703, "location": 596, "road_type": 341,
                "accident_type": 601, "accident_reason": 414, "prevention_method": 468}


@pytest.mark.parametrize("match", ["extract", "exact"])
def test_vru_qa_score_reproduces_qwen2_vl(reference_dir: Path, capsys: pytest.CaptureFixture,
                                          match: str) -> None:
    root = reference_dir / "vru_accident"
    res = _json_out(capsys, "score", "--task", "vru_accident_qa", "--data-root",
                    str(root / "MetaData"), "--predictions",
                    str(root / "Model_Response/VQA/Qwen2_VL_7B"), "--format", "vru-responses",
                    "--task-arg", f"match={match}", "--json")
    m = res["metrics"]
    for cat, n in QWEN_CORRECT.items():
        assert res["per_category_counts"][cat.replace("_", " ")] == {"correct": n,
                                                                     "total": 1000}
        assert m[f"acc_{cat}"] == pytest.approx(n / 1000)
    assert m["acc_avg"] == pytest.approx(0.5205)
    assert f"{100 * m['acc_avg']:.2f}" == "52.05"  # the README prints 52.1
    assert res["unparsed"] == 451  # the response files hold 451 null predictions
    assert res["counts"]["queries"] == 6000 and res["missing_videos"] == 0
    assert set(res["breakdown"]) == {"CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA"}


def test_vru_qa_exact_match_reproduces_gemini(reference_dir: Path) -> None:
    """Gemini's stored answers include "D. urban": the official exact match counts those as
    wrong (README AccAVG 66.9 from 66.85); our extractor reads the letter and scores higher."""
    from tasks.score_import import score_external

    root = reference_dir / "vru_accident"
    pred = root / "Model_Response/VQA/Gemini_15_flash"
    exact = VruAccidentQaTask(match="exact")
    res = score_external(exact, exact.load(root, "test"), pred, "vru-responses")
    assert res["metrics"]["acc_avg"] == pytest.approx(0.6685, abs=5e-5)
    lenient = VruAccidentQaTask()
    res2 = score_external(lenient, lenient.load(root, "test"), pred, "vru-responses")
    assert res2["metrics"]["acc_avg"] > res["metrics"]["acc_avg"]
    assert res2["unparsed"] == 0


def test_vru_caption_score_reproduces_gemini_rouge_and_meteor(
        reference_dir: Path, capsys: pytest.CaptureFixture) -> None:
    root = reference_dir / "vru_accident"
    res = _json_out(capsys, "score", "--task", "vru_accident_caption", "--data-root", str(root),
                    "--predictions", str(root / "Model_Response/Dense_Captioning/Gemini_15_flash"),
                    "--format", "vru-responses", "--json")
    stored = json.loads((root / "results/Dense_Captioning/Gemini_15_flash_DenseCaption_Score"
                         ".json").read_text())
    m = res["metrics"]
    for ours, theirs in (("rouge1", "ROUGE1"), ("rouge2", "ROUGE2"), ("rougeL", "ROUGEL")):
        for suf, key in (("p", "precision"), ("r", "recall"), ("f", "fmeasure")):
            assert round(m[f"{ours}_{suf}"], 3) == stored["ROUGE"][theirs][key]
    assert round(m["meteor"], 3) == stored["METEOR"]
    assert res["counts"]["queries"] == 1000
    # without CoreNLP jars / a COMET model the metrics are unavailable, never 0
    assert "spice" not in m and "VAD_EVAL_CORENLP_DIR" in res["unavailable_metrics"]["spice"]
    assert "comet" not in m and res["unavailable_metrics"]["comet"]


def test_hivau_describe_counts_the_real_rows(reference_dir: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    info = _json_out(capsys, "describe", "--task", "hivau", "--data-root",
                     str(reference_dir / "hivau70k"), "--json")
    assert info["rows"] == 3339
    assert info["per_level_task"] == {
        "clip/caption": 2207, "event/analysis": 182, "event/description": 276,
        "event/judgement": 276, "video/analysis": 98, "video/description": 150,
        "video/judgement": 150}
    assert info["per_level"] == {"clip": 2207, "event": 734, "video": 398}
    clip = _json_out(capsys, "describe", "--task", "hivau", "--level", "clip", "--data-root",
                     str(reference_dir / "hivau70k"), "--json")
    assert clip["rows"] == 2207


def test_hivau_clip_spans_from_the_database(reference_dir: Path, tmp_path: Path) -> None:
    """Without cut files, clips are cut from the raw video: Abuse028 clip E0C0 is
    [5.5, 6.7] s at 30 fps -> frames [165, 201)."""
    src = reference_dir / "hivau70k"
    for name in ("merge_instruction_test_final.jsonl", "ucf_database_test.json"):
        (tmp_path / name).symlink_to(src / name)
    raw = tmp_path / "ucf-crime/videos/test/Abuse028_x264.mp4"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b"placeholder: only its presence is checked when loading")
    samples = {s.video_id: s for s in HivauTask().load(tmp_path, "test")}
    clip = samples["ucf-crime/clips/test/Abuse028_x264_E0C0"]
    assert clip.path == raw and clip.span == (165, 201)
    assert clip.fps == 30.0 and clip.queries[0].category == "clip/caption"
    event = samples["ucf-crime/events/test/Abuse028_x264_E0"]
    assert event.span == (165, 240) and len(event.queries) == 3
    video = samples["ucf-crime/videos/test/Abuse028_x264"]
    assert video.span is None and video.num_frames == 1412
    other = samples["ucf-crime/clips/test/Arrest007_x264_E0C0"]
    assert other.path is None and "not found" in other.extra["unreadable"]


def test_hivau_span_conversion_is_the_official_int_rule() -> None:
    assert hivau.seconds_to_span(5.5, 6.7, 30.0, 1412) == (165, 201)
    assert hivau.seconds_to_span(0.0, 0.0, 30.0, 100) == (0, 1)  # at least one frame
    assert hivau.seconds_to_span(3.0, 99.0, 30.0, 100) == (90, 100)  # clipped to the video
    assert hivau.cut_of("ucf-crime/clips/test/Abuse028_x264_E0C12.mp4") == \
        ("Abuse028_x264", 0, 12)
    assert hivau.cut_of("x/events/test/v=Hnfy9XhlIPM__#1_label_B4-0-0_E3.mp4") == \
        ("v=Hnfy9XhlIPM__#1_label_B4-0-0", 3, None)
