"""AVA-GRPO's rewards (Vad-R1 Table 7, Algorithm 1) and the verification trims, on hand-built
completions (well-formed, malformed, repeated tags), the official example answers, and
hand-counted frame sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from methods.vad_r1.rewards import (
    RewardValues,
    accuracy_reward,
    format_reward,
    length_reward,
    predicted_normal,
    reasoning_words,
    verification_reward,
)
from methods.vad_r1.trim import trim_head_or_tail, trim_interval


def _abnormal(words: int = 3, which: str = "Abnormal") -> str:
    think = " ".join(["w"] * words)
    return (f"<think><step1>{think}</step1><step2>b</step2><step3>c</step3><step4>d</step4>"
            f"</think><answer>It is <which>{which}</which>: <what>a fight</what> during "
            "<when>[0.2, 0.6]</when> at <where>the left</where> because <why>y</why>, "
            "<how>h</how>.</answer>")


def _normal(words: int = 2) -> str:
    think = " ".join(["w"] * (words - 1))
    return (f"<think><step1>{think}</step1><step2>x</step2></think><answer>The video is "
            "<which>Normal</which>: <what>people walk</what>, <why>nothing happens</why>."
            "</answer>")


@pytest.mark.parametrize("text,normal", [
    (_abnormal(), False), (_normal(), True), (_abnormal(which="Fighting"), False),
    ("<answer><which> normal. </which></answer>", True),
    ("<which>Normal</which> then <which>Abnormal</which>", True),  # first tag wins
    ("<think>no answer at all</think>", None), ("<which></which>", None), ("", None),
    ("<answer><which>Abnormal", False),  # unclosed tags tolerated (truncated generation)
])
def test_predicted_class(text: str, normal: bool | None) -> None:
    assert predicted_normal(text) == normal


def test_accuracy_and_format() -> None:
    assert accuracy_reward(_abnormal(), abnormal=True) == 1.0
    assert accuracy_reward(_abnormal(), abnormal=False) == 0.0
    assert accuracy_reward(_normal(), abnormal=False) == 1.0
    assert accuracy_reward("<think>x</think>", abnormal=False) == 0.0  # no class, no credit
    assert format_reward(_abnormal()) == 1.0 and format_reward(_normal()) == 1.0
    assert format_reward(_abnormal().replace("<step3>c</step3>", "")) == 0.0  # a step missing
    assert format_reward("junk " + _normal()) == 0.0
    assert format_reward(_normal().replace("<why>", "<why><why>")) == 0.0  # repeated tag


def test_format_and_class_of_the_official_examples(reference_dir: Path) -> None:
    prompt = (reference_dir / "vad_r1/sft_user_prompt.txt").read_text()
    abnormal = prompt.split("Example Output for Abnormal Videos:")[1]
    abnormal = abnormal.split("For normal videos")[0].strip()
    normal = prompt.split("Example Output for Normal Videos:")[1].strip()
    assert format_reward(abnormal) == format_reward(normal) == 1.0
    assert predicted_normal(normal) is True and predicted_normal(abnormal) is False


def test_length_ranges_by_label() -> None:
    # step words + the fixed steps: _abnormal(n) has n + 3 words, _normal(n) has n words
    assert reasoning_words(_abnormal(230)) == 233 and reasoning_words(_normal(140)) == 140
    assert length_reward(_abnormal(230), abnormal=True) == 0.2   # 233: lower bound
    assert length_reward(_abnormal(229), abnormal=True) == 0.0   # 232
    assert length_reward(_abnormal(453), abnormal=True) == 0.2   # 456: upper bound
    assert length_reward(_abnormal(454), abnormal=True) == 0.0   # 457
    assert length_reward(_normal(140), abnormal=False) == 0.2
    assert length_reward(_normal(261), abnormal=False) == 0.2
    assert length_reward(_normal(262), abnormal=False) == 0.0
    assert length_reward(_normal(139), abnormal=False) == 0.0
    assert length_reward(_normal(200), abnormal=True) == 0.0    # the label picks the range
    assert length_reward(_normal(200), abnormal=False) == 0.2
    assert length_reward("<answer>no think</answer>", abnormal=False) == 0.0


def test_verification_reward_table() -> None:
    v = RewardValues()
    assert verification_reward(False, True) == v.verify_abnormal == 0.5
    assert verification_reward(True, False) == v.verify_normal == -0.2
    for a, b in [(False, False), (True, True), (None, True), (False, None), (None, None)]:
        assert verification_reward(a, b) == 0.0


def test_trim_interval_keeps_exactly_the_frames_outside() -> None:
    n = 160
    idx = np.linspace(0, n - 1, 16).astype(np.int64)  # 0, 10, 21, ..., 159
    kept = trim_interval(idx, n, (0.2, 0.6))  # frames 32 .. 96 (f / 160 in [0.2, 0.6])
    assert kept.tolist() == [f for f in idx.tolist() if not 32 <= f <= 96]
    assert trim_interval(idx, n, (0.6, 0.2)).tolist() == kept.tolist()  # swapped ends
    assert trim_interval(idx, n, (0.0, 1.0)).size == 0  # all removed: caller skips re-query
    assert trim_interval(idx, n, (0.5, 0.5)).tolist() == [f for f in idx if f != 80]


def test_trim_head_or_tail() -> None:
    idx = np.arange(0, 160, 10)
    sides = set()
    for seed in range(20):
        kept, side = trim_head_or_tail(idx, np.random.default_rng(seed), 0.25)
        sides.add(side)
        want = idx[4:] if side == "head" else idx[:12]  # ceil(0.25 * 16) = 4 frames
        assert kept.tolist() == want.tolist()
    assert sides == {"head", "tail"}
    kept, _ = trim_head_or_tail(np.arange(3), np.random.default_rng(0), 0.1)  # ceil(0.3) = 1
    assert len(kept) == 2
    with pytest.raises(ValueError):
        trim_head_or_tail(idx, np.random.default_rng(0), 1.0)
