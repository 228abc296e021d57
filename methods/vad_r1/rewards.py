"""AVA-GRPO's five rewards (Vad-R1 Table 7 and Algorithm 1), as pure functions of text.

====================================  =======  ==============================================
reward                                value    when
====================================  =======  ==============================================
accuracy                              1        the answer's class (Normal / Abnormal) equals
                                               the video's label
format                                1        all tags present and in order
                                               (:func:`tasks.answers.format_ok`)
anomaly verification: abnormal        +0.5     answered abnormal, and the video with the
                                               predicted interval removed is judged normal
anomaly verification: normal          -0.2     answered normal, and the video with its head
                                               or tail removed is judged abnormal
length                                0.2      the reasoning's word count is within [140, 261]
                                               for a normal video, [233, 456] for an abnormal
                                               one (the video's label decides the range)
====================================  =======  ==============================================

The class of an answer is read with the tolerant parser (:func:`tasks.answers.parse_vad_r1`:
first ``<which>`` wins, missing closing tags tolerated): "Normal" (case, quotes and a final
period ignored) is normal, any other non-empty class abnormal, and an answer without a
readable ``<which>`` has no class (accuracy 0, no verification re-query). The reasoning is the
``<think>`` content with every tag replaced by a space; words are whitespace-separated tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.answers import format_ok, parse_vad_r1

_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class RewardValues:
    """Table 7's values and the length ranges of Vad-R1 Appendix C (settings)."""

    accuracy: float = 1.0
    format: float = 1.0
    verify_abnormal: float = 0.5
    verify_normal: float = -0.2
    length: float = 0.2
    normal_words: tuple[int, int] = (140, 261)
    abnormal_words: tuple[int, int] = (233, 456)


def predicted_normal(text: str) -> bool | None:
    """True = answered normal, False = abnormal, None = no readable class."""
    ans = parse_vad_r1(text)
    if ans.which is None or not ans.which.strip():
        return None
    return bool(ans.is_normal)


def reasoning_words(text: str) -> int:
    """Words of the ``<think>`` content, each tag replaced by a space so that the last word of
    one step and the first of the next are not glued together (0 without ``<think>``)."""
    think = parse_vad_r1(text).think
    return len(_TAG.sub(" ", think).split()) if think else 0


def accuracy_reward(text: str, abnormal: bool, values: RewardValues = RewardValues()) -> float:
    pred = predicted_normal(text)
    return values.accuracy if pred is not None and pred == (not abnormal) else 0.0


def format_reward(text: str, values: RewardValues = RewardValues()) -> float:
    return values.format if format_ok(text) else 0.0


def length_reward(text: str, abnormal: bool, values: RewardValues = RewardValues()) -> float:
    lo, hi = values.abnormal_words if abnormal else values.normal_words
    return values.length if lo <= reasoning_words(text) <= hi else 0.0


def verification_reward(first_normal: bool | None, second_normal: bool | None,
                        values: RewardValues = RewardValues()) -> float:
    """Algorithm 1, lines 12-16: the reward of a completion whose class was ``first_normal``
    given the class ``second_normal`` of the re-query on the trimmed video (None: no class /
    no re-query)."""
    if first_normal is False and second_normal is True:
        return values.verify_abnormal
    if first_normal is True and second_normal is False:
        return values.verify_normal
    return 0.0
