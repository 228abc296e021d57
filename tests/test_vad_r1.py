"""Vad-R1: frame scoring from answers, verification trims, SFT targets, the sample world's RL
split, training stages through the CLI (tiny model) and inference on every supported task."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.cli import main
from methods.vad_r1.ava_grpo import verification_trims
from methods.vad_r1.inputs import Clip
from methods.vad_r1.scoring import frame_scores, normal_probability, token_texts

ABNORMAL = ("<think><step1>a</step1><step2>b</step2><step3>c</step3><step4>d</step4></think>"
            "<answer>It is <which>Fighting</which>: <what>x</what> in <when>[0.25, 0.5]</when>"
            " <where>y</where> <why>z</why> <how>w</how></answer>")
NORMAL = ("<think><step1>a</step1><step2>b</step2></think><answer>The video is "
          "<which>Normal</which>. <what>x</what> <why>z</why></answer>")


# -- frame scoring ---------------------------------------------------------------------------
def test_frame_scores_by_hand() -> None:
    # 8 frames at positions 0, .125, ..., .875; interval [0.25, 0.5] holds frames 2, 3, 4
    s = frame_scores(8, 0.9, True, (0.25, 0.5))
    assert s.tolist() == pytest.approx([0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1])
    assert frame_scores(4, 0.2, False, None).tolist() == pytest.approx([0.2] * 4)
    assert frame_scores(3, 0.7, True, None).tolist() == pytest.approx([0.7] * 3)


def test_normal_probability_from_top_logprobs() -> None:
    # tokens: "<which>" "Norm" "al" "</which>"; P(Norm) 0.6, P(N) 0.1, P(Fight) 0.3
    text = "<which>Normal</which>"
    lps = [math.log(0.9), math.log(0.6), math.log(0.99), math.log(0.95)]
    tops = [{"<which>": math.log(0.9)},
            {"Norm": math.log(0.6), "Fight": math.log(0.3), "N": math.log(0.1)},
            {"al": math.log(0.99)}, {"</which>": math.log(0.95)}]
    assert token_texts(lps, tops) == ["<which>", "Norm", "al", "</which>"]
    assert normal_probability(text, lps, tops) == pytest.approx(0.7)
    # the class token straddles the tag's end: ">Normal" vs ">Riot"
    tops2 = [{"<which": math.log(0.9)}, {">Normal": math.log(0.25), ">Riot": math.log(0.75)}]
    lps2 = [math.log(0.9), math.log(0.75)]
    assert normal_probability("<which>Riot</which>", lps2, tops2) == pytest.approx(0.25)
    assert normal_probability("no tag here", lps, tops) is None
    assert normal_probability(text, [], []) is None


# -- Algorithm 1's trims -------------------------------------------------------------------------
def test_verification_trims_on_hand_built_completions() -> None:
    idx = np.array([0, 10, 20, 30, 40, 50, 60, 70])  # of a 80-frame video
    clip = Clip(np.zeros((8, 2, 2, 3), np.uint8), idx, 80)
    texts = [ABNORMAL, NORMAL, "gibberish", "<answer><which>Fire</which></answer>",
             ABNORMAL.replace("[0.25, 0.5]", "[0, 1]")]
    classes, kept, what = verification_trims(texts, clip, np.random.default_rng(0), 0.25)
    assert classes == [False, True, None, False, False]
    assert kept[0] is not None and kept[0].tolist() == [0, 10, 50, 60, 70]  # 20..40 removed
    assert kept[1] is not None and len(kept[1]) == 6  # ceil(0.25 * 8) = 2 frames dropped
    assert kept[1].tolist() in ([20, 30, 40, 50, 60, 70], [0, 10, 20, 30, 40, 50])
    assert what[1] in ("head", "tail")
    assert kept[2] is None and what[2] == "no class"
    assert kept[3] is None and what[3] == "no interval"
    assert kept[4] is None and "nothing left" in what[4]
    sub = clip.keep(kept[0])
    assert sub.frames.shape[0] == 5 and sub.indices.tolist() == [0, 10, 50, 60, 70]


# -- SFT targets ---------------------------------------------------------------------------------
def test_sft_target_ends_with_end_of_turn(tiny_qwen_engine) -> None:
    from methods.vad_r1.sft import end_of_turn_id, target_ids

    tok = tiny_qwen_engine.loaded.tokenizer
    ids = target_ids(tok, " <think>x</think> ", "<answer>y</answer>")
    assert ids[-1] == end_of_turn_id(tok) == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(ids[:-1]) == "<think>x</think>\n<answer>y</answer>"


# -- data ------------------------------------------------------------------------------------------
def test_sample_world_rl_split() -> None:
    from tasks.vad_reasoning_task import VadReasoningTask

    task = VadReasoningTask()
    rl = task.load_train(None, "sample")
    sft = task.load_sft(None, "sample")
    assert len(rl) == 24 and sum(v.label for v in rl) == 12
    assert len(sft) == 6 and all(e.think.startswith("<think>") for e in sft)
    test_ids = {s.video_id for s in task.load(None, "sample")}
    assert not test_ids & {v.video_id for v in rl} and not test_ids & {e.video.video_id
                                                                      for e in sft}
    root = Path(task.train_sources["data_root"])
    row = json.loads((root / "Vad-Reasoning-RL-train.jsonl").read_text().splitlines()[0])
    assert set(row) == {"source", "video", "anomaly_type", "path", "total_frames"}


def test_bad_rl_file_names_line(tmp_path: Path) -> None:
    from tasks.base import TaskDataError
    from tasks.vad_reasoning_task import VadReasoningTask

    bad = tmp_path / "rl.jsonl"
    bad.write_text('{"video": "a.mp4", "anomaly_type": "Normal", "total_frames": 0}\n')
    task = VadReasoningTask(rl_annotations=str(bad))
    with pytest.raises(TaskDataError, match=r"rl.jsonl:1: field 'total_frames'"):
        task.load_train(None, "sample")


# -- training stages through the CLI (tiny model) ------------------------------------------------
def _log(ckpt: Path) -> list[dict]:
    return [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines()]


def test_sft_then_grpo_chain_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sft = tmp_path / "sft"
    assert main(["train", "--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample",
                 "--stage", "sft", "--steps", "4", "--out", str(sft), "--quiet"]) == 0
    rows = _log(sft)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["stage"] == "sft" for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]  # lr 3e-3 on 6 chains: the loss falls at once
    meta = json.loads((sft / "vad_r1.json").read_text())
    assert meta["mode"] == "full" and meta["stages"] == ["sft"]
    assert (sft / "model.safetensors").is_file() and (sft / "tokenizer.json").is_file()
    grpo = tmp_path / "grpo"
    assert main(["train", "--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample",
                 "--stage", "grpo", "--steps", "2", "--out", str(grpo), "--method-arg",
                 f"init={sft}", "--method-arg", "max_completion_length=48", "--quiet"]) == 0
    rows = _log(grpo)
    assert len(rows) == 2 and all(r["stage"] == "grpo" for r in rows)
    assert all(len(r["trims"]) == 8 for r in rows)  # G 4 x 2 videos, one re-query decision each
    # the GRPO run started from the SFT weights, and changed them
    from safetensors.torch import load_file

    a, b = load_file(str(sft / "model.safetensors")), load_file(str(grpo / "model.safetensors"))
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # the checkpoint is evaluated as the model itself
    capsys.readouterr()
    out = tmp_path / "runs"
    assert main(["--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample",
                 "--limit", "1", "--checkpoint", str(grpo), "--out", str(out),
                 "--no-cache"]) == 0
    cfg = json.loads(next(out.glob("*/config.json")).read_text())
    assert Path(cfg["model"]).resolve() == grpo.resolve()
    assert "tiny randomly initialised" in capsys.readouterr().err


def test_lora_mode_checkpoint_is_a_peft_dir(tmp_path: Path) -> None:
    ckpt = tmp_path / "lora"
    assert main(["train", "--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample",
                 "--stage", "sft", "--steps", "2", "--out", str(ckpt), "--method-arg",
                 "mode=lora", "--method-arg", "lora_rank=2", "--quiet"]) == 0
    cfg = json.loads((ckpt / "adapter_config.json").read_text())
    assert cfg["r"] == 2 and not (ckpt / "model.safetensors").exists()
    out = tmp_path / "runs"
    assert main(["--method", "vad-r1", "--task", "ucf_crime", "--split", "sample", "--limit",
                 "1", "--checkpoint", str(ckpt), "--out", str(out), "--no-cache"]) == 0
    rec = json.loads(next(out.glob("*/predictions*.jsonl")).read_text().splitlines()[0])
    assert len(rec["scores"]) == rec["num_frames"]


def test_bad_stage_and_setting_are_named(tmp_path: Path) -> None:
    from harness.training import TrainingError, TrainJob
    from methods.vad_r1.train import load_config

    with pytest.raises(TrainingError, match="--stage must be one of"):
        load_config(TrainJob("vad-r1", "vad_reasoning", tmp_path, stage="rl"))
    with pytest.raises(TrainingError, match=r"unknown Vad-R1 training setting\(s\) \['lr'\]"):
        load_config(TrainJob("vad-r1", "vad_reasoning", tmp_path, method_args={"lr": 1.0}))


# -- inference on every supported task -----------------------------------------------------------
@pytest.mark.parametrize("task", ["ucf_crime", "vad_reasoning", "vane", "hivau",
                                  "vru_accident_qa"])
def test_runs_on_task(task: str, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert main(["--method", "vad-r1", "--task", task, "--split", "sample", "--limit", "1",
                 "--out", str(out), "--no-cache"]) == 0
    run = next(out.glob(f"{task}-vad-r1-*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics
    rec = json.loads(next(run.glob("predictions*.jsonl")).read_text().splitlines()[0])
    if task == "ucf_crime":
        assert len(rec["frames"]["indices"]) == 16
        assert 0.0 <= rec["answer"]["p_abnormal"] <= 1.0
    else:
        assert set(rec["raw_responses"]) == set(rec["responses"])


def test_official_prompt_file(tmp_path: Path, reference_dir: Path) -> None:
    prompt = reference_dir / "vad_r1" / "sft_user_prompt.txt"
    out = tmp_path / "runs"
    assert main(["--method", "vad-r1", "--task", "vad_reasoning", "--split", "sample",
                 "--limit", "1", "--prompt-file", str(prompt), "--out", str(out),
                 "--no-cache"]) == 0
    cfg = json.loads(next(out.glob("*/config.json")).read_text())
    ms = cfg["method_settings"]
    assert ms["settings"]["prompt_file"] == str(prompt)
    from tasks.prompts import load_template

    assert ms["prompt"]["user"] == load_template(prompt).user
