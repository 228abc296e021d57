"""Sentence-level METEOR and BLEU from NLTK, one reference per hypothesis.

Conventions shared by the functions here:

* ``refs[i]`` is the one reference text of ``hyps[i]``; both sequences have the same length
  (``ValueError`` otherwise). Results are ``(N,)`` float64 arrays, one score per pair, in
  the input order; averaging is left to the caller (both protocols below take the mean).
* Texts are tokenised by :func:`tasks.metrics.text.tokenize.word_tokenize` (NLTK's
  ``word_tokenize`` with an untrained Punkt sentence splitter).
* METEOR uses WordNet 3.0 from :func:`tasks.metrics.text.assets.wordnet`, NLTK's defaults
  otherwise (alpha 0.9, beta 3, gamma 0.5, Porter stemmer, tokens lower-cased inside the
  matcher). A pair with no matching word scores 0. NLTK matches in three stages (exact
  words, Porter stems, WordNet synonyms) and its synonym stage looks up the *stems* left
  unmatched by the stem stage, so "auto" matches "car" but "automobile" (stem "automobil")
  does not; this is NLTK 3.9.1's behaviour and the protocols' numbers depend on it.

Protocols built from these (the averaging and the text clean-up belong to the caller):

* VRU-Accident dense captions: ``meteor_scores(refs, hyps, lowercase=False, drop_punct=True)``
  averaged over the pairs.
* Vad-R1 reasoning: ``bleu_individual(refs, hyps)`` and
  ``meteor_scores(refs, hyps, lowercase=True, drop_punct=False)`` on tag-stripped texts,
  averaged over videos, with an output shorter than 5 characters scoring 0 on every metric.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from nltk.translate.bleu_score import sentence_bleu
from nltk.translate.meteor_score import meteor_score

from tasks.metrics.text.assets import wordnet
from tasks.metrics.text.tokenize import word_tokenize

__all__ = ["BLEU_KEYS", "bleu_individual", "meteor_scores"]

BLEU_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4")
_ONE_HOT = [(1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)]


def _check_pairs(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("refs and hyps must be sequences of strings, not strings")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")


def meteor_scores(
    refs: Sequence[str], hyps: Sequence[str], *, lowercase: bool, drop_punct: bool
) -> np.ndarray:
    """NLTK ``meteor_score([ref_tokens], hyp_tokens)`` per pair, ``(N,)``.

    ``lowercase`` and ``drop_punct`` are passed to ``word_tokenize`` (lower-casing changes
    only the tokenisation: NLTK's matcher compares lower-cased words anyway). The first call
    in a process loads WordNet (about 4 s).
    """
    _check_pairs(refs, hyps)
    wn = wordnet()
    out = np.empty(len(refs), dtype=np.float64)
    for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
        ref_tokens = word_tokenize(ref, lowercase=lowercase, drop_punct=drop_punct)
        hyp_tokens = word_tokenize(hyp, lowercase=lowercase, drop_punct=drop_punct)
        out[i] = meteor_score([ref_tokens], hyp_tokens, wordnet=wn)
    return out


def bleu_individual(
    refs: Sequence[str], hyps: Sequence[str], *, lowercase: bool = True
) -> dict[str, np.ndarray]:
    """Individual-order sentence BLEU per pair: ``{"bleu_1": (N,), ..., "bleu_4": (N,)}``.

    ``bleu_n`` is NLTK ``sentence_bleu([ref_tokens], hyp_tokens)`` with the one-hot weights of
    order ``n`` (the clipped n-gram precision of that order times the brevity penalty), no
    smoothing. Without smoothing an order with no matching n-gram gives NLTK's value for it:
    exactly 0 when no unigram matches, else about 2e-308 (NLTK replaces the zero precision
    with the smallest float); its "0 counts" warnings are silenced, the values are NLTK's.
    """
    _check_pairs(refs, hyps)
    out = {key: np.empty(len(refs), dtype=np.float64) for key in BLEU_KEYS}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*The hypothesis contains 0 counts")
        for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
            ref_tokens = word_tokenize(ref, lowercase=lowercase)
            hyp_tokens = word_tokenize(hyp, lowercase=lowercase)
            scores = sentence_bleu([ref_tokens], hyp_tokens, weights=_ONE_HOT)  # one per order
            for key, value in zip(BLEU_KEYS, scores, strict=True):
                out[key][i] = float(value)
    return out
