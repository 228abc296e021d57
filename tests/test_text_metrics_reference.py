"""Text metrics against independent references: the official VRU-Accident scores of Gemini
1.5 Flash dense captions (stored by the authors), and pycocoevalcap called directly."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from tasks.metrics.text import (
    CocoResult,
    coco_caption_scores,
    java_available,
    meteor_scores,
    rouge_prf,
)
from tasks.metrics.text import coco as coco_mod

VRU_SUBSETS = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")

# Java is part of the set-up (`make` warns without it); CI must run these tests, not skip them.
_NO_JAVA = java_available() is not None and os.environ.get("CI", "").lower() != "true"
needs_java = pytest.mark.skipif(_NO_JAVA, reason=str(java_available()))


@pytest.fixture(scope="module")
def vru_gemini(reference_dir: Path) -> tuple[list[str], list[str], dict]:
    """The 1000 (reference, Gemini 1.5 Flash) dense captions and the stored official scores."""
    root = reference_dir / "vru_accident"
    refs: list[str] = []
    hyps: list[str] = []
    for subset in VRU_SUBSETS:
        gt = json.loads((root / f"MetaData/{subset}/{subset}_Dense_Caption.json").read_text())
        pred_path = (
            root / "Model_Response/Dense_Captioning/Gemini_15_flash"
            / f"{subset}_Dense_Captioning_response.json"
        )  # fmt: skip
        pred = json.loads(pred_path.read_text())
        for key, value in gt.items():
            refs.append(value["gt"])
            hyps.append(pred[key]["pred"])
    stored = json.loads(
        (root / "results/Dense_Captioning/Gemini_15_flash_DenseCaption_Score.json").read_text()
    )
    return refs, hyps, stored


def test_vru_gemini_meteor_matches_official(vru_gemini: tuple[list[str], list[str], dict]) -> None:
    refs, hyps, stored = vru_gemini
    assert len(refs) == 1000
    scores = meteor_scores(refs, hyps, lowercase=False, drop_punct=True)
    assert round(float(scores.mean()), 3) == stored["METEOR"] == 0.285


def test_vru_gemini_rouge_matches_official(vru_gemini: tuple[list[str], list[str], dict]) -> None:
    refs, hyps, stored = vru_gemini
    out = rouge_prf(refs, hyps, backend="rouge-score", stemmer=True)
    names = {"rouge1": "ROUGE1", "rouge2": "ROUGE2", "rougeL": "ROUGEL"}
    stats = {"p": "precision", "r": "recall", "f": "fmeasure"}
    for ours, theirs in names.items():
        for s, field in stats.items():
            got = round(float(out[f"{ours}_{s}"].mean()), 3)
            assert got == stored["ROUGE"][theirs][field], (ours, s)


# -- pycocoevalcap, called directly, vs. the wrapper ----------------------------------------

SMALL_REFS = {
    "v1": ["A man is riding a brown horse.", "A person rides a horse on the beach"],
    "v2": ["Two dogs are playing in the snow!", "Dogs play outside."],
    "v3": ["A car crashes into a pole at night"],
    "v4": ["The pedestrian crosses the street; a truck stops."],
    "v5": ["Someone fights near the shop"],
}
SMALL_HYPS = {
    "v1": "a man rides a horse",
    "v2": "dogs playing in snow",
    "v3": "A car hits a pole.\nThen it stops ||| quickly",  # newline and METEOR's separator
    "v4": "",  # empty hypothesis
    "v5": "...",  # nothing left after PTB punctuation removal
}


@pytest.fixture(scope="module")
def coco_pair() -> tuple[CocoResult, dict[str, float], dict[str, dict[str, float]]]:
    """The wrapper's result and pycocoevalcap's own, on the same small corpus.

    METEOR's JVM takes seconds to load its paraphrase table, so one pycocoevalcap ``Meteor``
    process serves both: it scores the directly tokenised corpus first, then is handed to
    the wrapper (which must ask for exactly one and close it).
    """
    if _NO_JAVA:
        pytest.skip(str(java_available()))
    meteor = Meteor()
    try:
        tok = PTBTokenizer()
        gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in SMALL_REFS.items()})
        res = tok.tokenize({k: [{"caption": v}] for k, v in SMALL_HYPS.items()})
        ids = list(SMALL_HYPS)
        corpus: dict[str, float] = {}
        items: dict[str, dict[str, float]] = {}
        bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            corpus[f"bleu_{n + 1}"] = bleu[n]
            items[f"bleu_{n + 1}"] = dict(zip(ids, bleu_items[n], strict=True))
        for key, scorer in (("rouge_l", Rouge()), ("cider", Cider())):
            score, per = scorer.compute_score(gts, res)
            corpus[key], items[key] = score, dict(zip(ids, per, strict=True))
        score, per = meteor.compute_score(gts, res)
        corpus["meteor"], items["meteor"] = score, dict(zip(ids, per, strict=True))

        handed: list[Meteor] = []

        def one_meteor() -> Meteor:
            handed.append(meteor)
            return meteor

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(coco_mod, "Meteor", one_meteor)
            wrapped = coco_caption_scores(SMALL_REFS, SMALL_HYPS)
        assert len(handed) == 1  # one METEOR process for the corpus
        assert meteor.meteor_p.poll() is not None  # closed by the wrapper
    finally:
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
    return wrapped, corpus, items


@needs_java
def test_coco_wrapper_equals_pycocoevalcap(
    coco_pair: tuple[CocoResult, dict[str, float], dict[str, dict[str, float]]],
) -> None:
    wrapped, corpus, items = coco_pair
    assert wrapped.unavailable == {}
    assert set(wrapped.corpus) == set(corpus)
    for key, value in corpus.items():
        assert wrapped.corpus[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        assert list(wrapped.per_item[key]) == list(SMALL_HYPS)
        for i, v in items[key].items():
            assert wrapped.per_item[key][i] == pytest.approx(v, rel=1e-12, abs=1e-15), (key, i)


@needs_java
def test_coco_empty_hypotheses_score_zero(
    coco_pair: tuple[CocoResult, dict[str, float], dict[str, dict[str, float]]],
) -> None:
    wrapped, _, _ = coco_pair
    for key in ("bleu_1", "meteor", "rouge_l", "cider"):
        assert wrapped.per_item[key]["v4"] == 0.0, key
        assert wrapped.per_item[key]["v5"] == 0.0, key
    assert 0 < wrapped.corpus["meteor"] < 1
    # "a man rides a horse": 5/5 clipped unigrams; closest reference length 7 (a man is riding
    # a brown horse) -> brevity penalty exp(1 - 7/5)
    assert wrapped.per_item["bleu_1"]["v1"] == pytest.approx(math.exp(1 - 7 / 5), abs=1e-9)
