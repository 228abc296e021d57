"""The `vad-eval` subcommands on the real reference files (published numbers as reference)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


def _json_out(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_describe_real_annotation_totals(reference_dir: Path, capsys: pytest.CaptureFixture
                                         ) -> None:
    ucf = _json_out(capsys, "describe", "--task", "ucf_crime", "--data-root",
                    str(reference_dir / "ucf_crime"), "--json")
    assert (ucf["videos"], ucf["frames"]) == (290, 1_111_808)
    assert (ucf["anomalous_videos"], ucf["normal_videos"]) == (140, 150)
    xd = _json_out(capsys, "describe", "--task", "xd_violence", "--data-root",
                   str(reference_dir / "xd_violence"), "--json")
    assert (xd["videos"], xd["frames"], xd["anomalous_videos"]) == (800, 2_335_801, 500)


def test_score_reproduces_vadtree(reference_dir: Path, capsys: pytest.CaptureFixture) -> None:
    root = reference_dir / "ucf_crime"
    res = _json_out(capsys, "score", "--task", "ucf_crime", "--data-root", str(root),
                    "--scores", str(root / "vadtree/coarse_llm_scores_raw.json"),
                    "--format", "segments-json", "--field", "0", "--transform", "sigmoid",
                    "--round", "4", "--json", "--task-arg", "bootstrap=0")
    assert round(res["metrics"]["roc_auc"], 4) == 0.7567
    assert round(res["metrics"]["pr_auc"], 4) == 0.3153


def test_list_names_everything(capsys: pytest.CaptureFixture) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("ucf_crime", "xd_violence", "complexvad", "msad", "frozen", "frame_diff", "hf"):
        assert f"  {name} " in out


def test_bad_input_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  165  oops  -1  -1\n")
    (tmp_path / "anomaly_test.txt").write_text("Abuse028_x264 0 1411 0\n")
    assert main(["describe", "--task", "ucf_crime", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Temporal_Anomaly_Annotation_for_Testing_Videos.txt:1" in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("method: frozen\ntask: ucf_crime\nbatchsize: 3\n")
    assert main(["--config", str(cfg)]) == 2
    assert "unknown key 'batchsize'" in capsys.readouterr().err


def test_bad_values_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("method: frozen\ntask: ucf_crime\nbatch_size: '8'\n")
    assert main(["--config", str(cfg)]) == 2
    assert "'batch_size' must be int" in capsys.readouterr().err
    assert main(["--method", "constant", "--task", "ucf_crime", "--out", str(tmp_path),
                 "--task-arg", "label_convention=sideways"]) == 2
    assert "label_convention" in capsys.readouterr().err
    assert main(["--method", "constant", "--task", "ucf_crime", "--out", str(tmp_path),
                 "--method-arg", "nope=1"]) == 2
    assert "unknown setting(s) ['nope']" in capsys.readouterr().err
