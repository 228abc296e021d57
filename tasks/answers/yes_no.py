"""Yes/no answers.

``extract_yes_no`` reads a free-text answer; ``yes_probability`` reads the first generated
position's top log-probabilities, which is how a frozen VLM's "Yes" becomes a continuous score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_WORD = re.compile(r"[A-Za-z]+")
_YES = {"yes", "y", "true", "abnormal", "anomalous", "anomaly"}
_NO = {"no", "n", "false", "normal"}


def extract_yes_no(text: str) -> bool | None:
    """The first yes/no word of ``text`` (case-insensitive): True, False, or None if absent.

    "Yes." -> True; "No, nothing unusual" -> False; "Answer: yes" -> True; "" -> None.
    Synonyms accepted: abnormal/anomalous/anomaly/true (yes), normal/false (no).
    """
    for word in _WORD.findall(text):
        w = word.lower()
        if w in _YES:
            return True
        if w in _NO:
            return False
    return None


def yes_probability(top_logprobs: Mapping[str, float]) -> float | None:
    """P(yes) renormalised over yes/no tokens of one position's top-k log-probabilities.

    Token texts are compared after stripping whitespace and lower-casing, so ``"Yes"``,
    ``" yes"`` and ``"YES"`` pool together. Returns None when neither yes nor no is among the
    top-k tokens.
    """
    p_yes = p_no = 0.0
    for tok, lp in top_logprobs.items():
        t = tok.strip().lower()
        if t == "yes":
            p_yes += math.exp(lp)
        elif t == "no":
            p_no += math.exp(lp)
    total = p_yes + p_no
    return p_yes / total if total > 0 else None
