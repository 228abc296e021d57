"""ROUGE-1, ROUGE-2 and ROUGE-L precision, recall and F per pair, from one of two packages.

The two packages tokenise and define ROUGE-L differently, so their numbers differ on the
same texts; each protocol names the one it used:

* ``backend="rouge-score"`` (Google's ``rouge_score`` 0.1.2, VRU-Accident):
  ``RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=stemmer).score(ref, hyp)``.
  Its tokenizer lower-cases, replaces every non-``[a-z0-9]`` character with a space and, with
  the stemmer, Porter-stems tokens longer than 3 characters; ROUGE-L is the sentence-level
  LCS over the whole text. Empty texts score 0.
* ``backend="rouge"`` (pltrdy ``rouge`` 1.0.1, Vad-R1): ``Rouge().get_scores(hyp, ref)``.
  It splits each text into sentences on ``"."``, then words on spaces (no lower-casing, no
  stemming: ``stemmer`` must be ``False``); ROUGE-L is its summary-level union-LCS. The
  package raises on a text with nothing but periods (empty included); such a pair scores 0
  here on every key. Its LCS back-tracking recurses once per word of a sentence, so the
  recursion limit is raised while it runs (sentences of more than about 500 words would
  otherwise fail); the numbers are the package's.

Conventions: ``refs[i]`` is the one reference of ``hyps[i]`` (same lengths, else
``ValueError``). The result maps each of :data:`ROUGE_KEYS` (``rouge1_p``, ``rouge1_r``,
``rouge1_f``, ``rouge2_*``, ``rougeL_*``) to an ``(N,)`` float64 array in input order;
averaging is left to the caller (both protocols take the mean of each key).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

__all__ = ["ROUGE_BACKENDS", "ROUGE_KEYS", "rouge_prf"]

ROUGE_BACKENDS = ("rouge-score", "rouge")
_TYPES = ("rouge1", "rouge2", "rougeL")
ROUGE_KEYS = tuple(f"{t}_{s}" for t in _TYPES for s in ("p", "r", "f"))
_PLTRDY_NAMES = {"rouge1": "rouge-1", "rouge2": "rouge-2", "rougeL": "rouge-l"}
_RECURSION_LIMIT = 20_000


@cache
def _rouge_scorer(stemmer: bool) -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(list(_TYPES), use_stemmer=stemmer)


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def rouge_prf(
    refs: Sequence[str],
    hyps: Sequence[str],
    *,
    backend: str = "rouge-score",
    stemmer: bool = True,
) -> dict[str, np.ndarray]:
    """Per-pair ROUGE-1/2/L P, R, F: ``{"rouge1_p": (N,), ..., "rougeL_f": (N,)}``.

    ``backend`` is ``"rouge-score"`` or ``"rouge"`` (see the module docstring); ``stemmer``
    is the Porter stemmer of ``rouge-score`` and must be ``False`` with ``"rouge"``.
    """
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("refs and hyps must be sequences of strings, not strings")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if backend not in ROUGE_BACKENDS:
        raise ValueError(f"unknown ROUGE backend {backend!r}; choose one of {ROUGE_BACKENDS}")
    out = {key: np.zeros(len(refs), dtype=np.float64) for key in ROUGE_KEYS}
    if backend == "rouge-score":
        scorer = _rouge_scorer(bool(stemmer))
        for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
            scores = scorer.score(ref, hyp)
            for t in _TYPES:
                out[f"{t}_p"][i] = scores[t].precision
                out[f"{t}_r"][i] = scores[t].recall
                out[f"{t}_f"][i] = scores[t].fmeasure
        return out

    if stemmer:
        raise ValueError("the 'rouge' backend has no stemmer: pass stemmer=False")
    from rouge import Rouge

    pltrdy = Rouge()
    with _recursion_limit(_RECURSION_LIMIT):
        for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
            if not ref.replace(".", "") or not hyp.replace(".", ""):
                continue  # the package raises: no sentence on one side; scores stay 0
            scores = pltrdy.get_scores(hyp, ref)[0]
            for t in _TYPES:
                s = scores[_PLTRDY_NAMES[t]]
                out[f"{t}_p"][i] = s["p"]
                out[f"{t}_r"][i] = s["r"]
                out[f"{t}_f"][i] = s["f"]
    return out
