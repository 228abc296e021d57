"""Frame scores from a Vad-R1 answer (frame-level tasks: UCF-Crime, XD-Violence, ComplexVAD).

The model is asked the P2C-CoT question once per video. Its answer gives a class (first
``<which>``: "Normal" or an anomaly type; no readable ``<which>`` counts as abnormal, the
official evaluation's rule) and, when abnormal, a normalised interval ``<when>[a, b]</when>``.

``p`` = the probability of the Abnormal answer: ``1 - P(Normal)`` at the first token of the
``<which>`` content, read from the completion's top log-probabilities (the raw model
distribution; the probabilities of every alternative token that begins "Normal" are summed)
when the engine returns them, else 1 for an abnormal and 0 for a normal answer.

Frame ``f`` (0-based, of ``num_frames``) at position ``f / num_frames`` then scores:

* ``p`` inside the predicted interval of an abnormal answer (both ends inclusive);
* the complement ``1 - p`` outside it: the model holds those frames normal with confidence
  ``p``;
* ``p`` everywhere for a normal answer (``p < 0.5`` there: the video's probability of being
  abnormal), and everywhere for an abnormal answer without a readable interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

_WHICH = re.compile(r"<\s*which\s*>", re.IGNORECASE)


def token_texts(token_logprobs: Sequence[float], top_logprobs: Sequence[dict[str, float]]
                ) -> list[str]:
    """The text of each generated token, recovered from the top log-probabilities (the chosen
    token's entry is the one whose log-probability equals the chosen one's)."""
    out = []
    for lp, tops in zip(token_logprobs, top_logprobs, strict=False):
        if not tops:
            out.append("")
            continue
        out.append(min(tops, key=lambda k: abs(tops[k] - lp)))
    return out


def normal_probability(text: str, token_logprobs: Sequence[float],
                       top_logprobs: Sequence[dict[str, float]]) -> float | None:
    """``P(Normal)`` at the first token of the first ``<which>`` content (module docstring);
    None when there is no ``<which>`` or no log-probabilities cover it."""
    m = _WHICH.search(text)
    if m is None or not top_logprobs:
        return None
    texts = token_texts(token_logprobs, top_logprobs)
    pos = 0
    for k, piece in enumerate(texts):
        end = pos + len(piece)
        if end > m.end():  # token k starts the content (or straddles the tag's end)
            cut = max(0, m.end() - pos)
            total = 0.0
            for alt, lp in top_logprobs[k].items():
                rest = alt[cut:].lstrip().lower() if len(alt) > cut else ""
                if rest and ("normal".startswith(rest) or rest.startswith("normal")):
                    total += math.exp(lp)
            return min(1.0, total)
        pos = end
    return None


def frame_scores(num_frames: int, p_abnormal: float, abnormal: bool,
                 when: tuple[float, float] | None) -> np.ndarray:
    """``(num_frames,)`` float64 scores by the module docstring's rule."""
    scores = np.full(num_frames, float(p_abnormal))
    if abnormal and when is not None:
        lo, hi = sorted((float(when[0]), float(when[1])))
        pos = np.arange(num_frames) / max(num_frames, 1)
        inside = (pos >= lo) & (pos <= hi)
        scores[~inside] = 1.0 - float(p_abnormal)
    return scores
