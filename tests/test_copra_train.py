"""COPRA's GRPO training on the tiny Qwen2-VL: gradients reach the generator only; the
teacher-forced log-probabilities GRPO differentiates equal the sampler's own (raw, tempered,
constrained); configuration precedence; and, end to end through the CLI, training on the
sample world's UCF-Crime training videos raises the test ``roc_auc`` over the untrained COPRA.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.cli import main
from harness.engines.base import Message, Request, SamplingParams, VideoPart
from harness.engines.hf import HFEngine
from harness.registry import TASKS
from harness.training import TrainingError, TrainJob
from methods.copra.train import CopraTrainConfig, CopraTrainer, load_config
from methods.rl.rollout import group_logprobs, sample_groups


@pytest.fixture(scope="module")
def engine(tiny_qwen_engine: HFEngine) -> HFEngine:
    return tiny_qwen_engine


@pytest.fixture(scope="module")
def videos() -> list[Any]:
    return TASKS.get("ucf_crime")().load_train(None, "sample")  # type: ignore[operator,no-any-return]


def _cfg(**kw: Any) -> CopraTrainConfig:
    base = dict(width=32, heads=4, rank=2, num_generations=4, batch_videos=2, steps=2,
                answer_mode="constrained", temperature=4.0, learning_rate=1e-4,
                condition_frames=4)
    return CopraTrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_only_the_generator_gets_gradients(engine: HFEngine, videos: list[Any]) -> None:
    trainer = CopraTrainer(_cfg(), engine, videos)
    before = {k: v.clone() for k, v in engine.loaded.model.state_dict().items()}
    # a batch with both labels so that the group rewards differ
    batch = [next(v for v in videos if v.label == 1), next(v for v in videos if v.label == 0)]
    for seed in range(20):  # find a step whose groups are not all unanimous
        out = trainer.step(seed, batch, update=False)
        grads = [p.grad for p in trainer.model.parameters()]
        if any(g is not None and g.abs().sum() > 0 for g in grads):
            break
        trainer.model.zero_grad(set_to_none=True)
    else:
        pytest.fail("no step with a gradient")
    assert len(set(out["rewards"])) > 1
    backbone = list(engine.loaded.model.parameters())
    assert all(p.grad is None and not p.requires_grad for p in backbone)
    b_heads = [p.grad for n, p in trainer.model.named_parameters() if "B|" in n and ".2." in n]
    assert any(g is not None and g.abs().sum() > 0 for g in b_heads)
    after = engine.loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("temperature,constrained", [(1.0, False), (4.0, True), (2.0, False)])
def test_teacher_forced_logprobs_equal_the_samplers(engine: HFEngine, temperature: float,
                                                    constrained: bool) -> None:
    frames = torch.randint(0, 255, (4, 56, 56, 3), generator=torch.Generator().manual_seed(0))
    req = Request((Message.user(VideoPart(frames.numpy().astype("uint8"), fps=2.0),
                                "Anything abnormal? Yes or No."),), SamplingParams())
    allowed = ("Yes", "No") if constrained else ()
    groups = sample_groups(engine, [req], 3, temperature, 1 if constrained else 5,
                           allowed_tokens=allowed, seed=7)
    logp, mask = group_logprobs(engine, groups, temperature=temperature)
    # the sampler's raw log-probabilities of the same tokens, re-asked with logprobs
    raw = engine.generate([Request(req.messages, SamplingParams(
        max_new_tokens=len(toks), temperature=temperature, n=1, seed=7 + 0 * j,
        logprobs=0, allowed_tokens=allowed))
        for j, toks in enumerate(groups.token_ids[:1])])
    first = raw[0].completions[0]
    if temperature == 1.0:
        assert first.token_ids == groups.token_ids[0]
        torch.testing.assert_close(logp[0, : len(first.token_ids)],
                                   torch.tensor(first.token_logprobs), atol=2e-4, rtol=0)
    assert mask.sum(1).tolist() == [float(len(t)) for t in groups.token_ids]
    if constrained:  # tempered and renormalised over Yes/No, by hand from the raw targets
        probe = engine.generate([Request(req.messages, SamplingParams(
            max_new_tokens=1, target_tokens=("Yes", "No")))])[0].completions[0]
        lp = probe.target_logprobs[0]
        z = math.log(sum(math.exp(v / temperature) for v in lp.values()))
        for i, toks in enumerate(groups.token_ids):
            text = engine.loaded.tokenizer.decode(toks)
            assert math.isclose(float(logp[i, 0]), lp[text] / temperature - z, abs_tol=1e-4)


def test_config_precedence_and_errors(tmp_path: Path) -> None:
    job = TrainJob(method="copra", task="ucf_crime", out=tmp_path)
    cfg = load_config(job, "copra", True)  # no --config, tiny default model: the tiny preset
    assert (cfg.model, cfg.answer_mode, cfg.temperature) == ("tiny-qwen2-vl", "constrained", 4.0)
    job = TrainJob(method="copra", task="ucf_crime", out=tmp_path, model="some/other",
                   steps=7, method_args={"learning_rate": 3e-5})
    cfg = load_config(job, "copra", True)  # no preset for that model: the paper's defaults
    assert (cfg.learning_rate, cfg.steps, cfg.answer_mode, cfg.beta, cfg.num_generations) == (
        3e-5, 7, "constrained", 0.04, 8)
    f = tmp_path / "c.yaml"
    f.write_text("answer_mode: constrained\nlearning_rate: 2e-5\nbogus: 1\n")
    with pytest.raises(TrainingError, match=r"c.yaml: unknown COPRA training setting.*bogus"):
        load_config(TrainJob(method="copra", task="t", out=tmp_path, config=str(f)),
                    "copra", True)
    f.write_text("answer_mode: constrained\nlearning_rate: 2e-5\n")
    cfg = load_config(TrainJob(method="copra", task="t", out=tmp_path, config=str(f),
                               method_args={"answer_mode": "think"}), "copra", True)
    assert (cfg.learning_rate, cfg.answer_mode) == (2e-5, "think")
    with pytest.raises(TrainingError, match="use_prior"):
        load_config(TrainJob(method="copra", task="t", out=tmp_path,
                             method_args={"use_prior": False}), "copra", True)
    with pytest.raises(TrainingError, match="--stage"):
        load_config(TrainJob(method="copra", task="t", out=tmp_path, stage="sft"),
                    "copra", True)
    with pytest.raises(TrainingError, match="neither a COPRA preset"):
        load_config(TrainJob(method="copra", task="t", out=tmp_path, config="nope"),
                    "copra", True)
    for name in ("internvl2-8b", "qwen2-vl-7b", "internvl3-8b"):
        cfg = load_config(TrainJob(method="copra", task="t", out=tmp_path, config=name),
                          "copra", True)
        assert cfg.learning_rate == 1e-6 and cfg.width == 512 and cfg.beta == 0.04


def test_batches_are_epochs(engine: HFEngine, videos: list[Any]) -> None:
    trainer = CopraTrainer(_cfg(batch_videos=5, steps=None, epochs=2.0), engine, videos)
    batches = trainer.batches()
    assert len(batches) == 2 * math.ceil(len(videos) / 5) == trainer.total_steps
    seen = [v.video_id for b in batches for v in b]
    first = seen[: len(videos)]
    assert sorted(first) == sorted(v.video_id for v in videos)  # each video once per epoch


def _roc_auc(capsys: pytest.CaptureFixture[str], args: list[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--method", "copra", "--task", "ucf_crime", "--split", "sample", "--json",
                 "--no-progress", "--no-cache", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_train_then_evaluate_beats_the_untrained_copra(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's check, with the CLI's defaults (the tiny preset: ~200 GRPO steps)."""
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--method", "copra", "--task", "ucf_crime", "--split", "sample",
                 "--out", str(ckpt), "--quiet"]) == 0
    meta = json.loads((ckpt / "copra.json").read_text())
    summary = meta["train"]["summary"]
    assert summary["final_reward_mean"] > summary["first_reward_mean"] + 0.2
    assert len((ckpt / "train_log.jsonl").read_text().splitlines()) == summary["steps"]
    untrained = _roc_auc(capsys, ["--out", str(tmp_path / "runs")])
    trained = _roc_auc(capsys, ["--out", str(tmp_path / "runs"), "--checkpoint", str(ckpt)])
    print("untrained", untrained["metrics"]["roc_auc"], "trained", trained["metrics"]["roc_auc"])
    assert trained["metrics"]["roc_auc"] > untrained["metrics"]["roc_auc"] + 0.03
    assert trained["steps"]["step1"]["roc_auc"] > untrained["steps"]["step1"]["roc_auc"] + 0.05
