"""Answer extractors on real public model outputs (``reference_dir``, see MANIFEST.md).

- VRU-Accident VQA responses of four models: every prediction maps to its leading letter, and
  the per-category accuracies computed with :func:`extract_choice` equal the published ones
  (``results/VQA/*_VQA_Acc.json``, typed in below); every option string of the annotations
  splits into A-D.
- The Vad-R1 SFT prompt's two worked examples parse and pass :func:`format_ok`.
- VADTree's LLM outputs (DeepSeek-R1-Distill reasoning, then "[0.2]") give the scores VADTree
  stored next to them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tasks.answers import (
    extract_choice,
    extract_score,
    format_ok,
    parse_options,
    parse_vad_r1,
    vad_r1_official_class,
    vad_r1_official_when,
)
from tasks.formats.vru import CATEGORIES, SUBSETS

MODELS = ("Gemini_15_flash", "LLaVA_Video", "InternVL3_8B", "Qwen2_VL_7B")
# results/VQA/<model>_VQA_Acc.json (correct answers out of 1000 per category)
PUBLISHED = {
    "Qwen2_VL_7B": (703, 596, 341, 601, 414, 468),
    "LLaVA_Video": (682, 807, 647, 637, 504, 586),
    "InternVL3_8B": (700, 818, 678, 648, 437, 584),
    "Gemini_15_flash": (657, 785, 714, 779, 546, 530),
}


def _responses(reference_dir: Path, model: str) -> list[tuple[str, str | None, str]]:
    """(category, pred, GT) of all four subsets."""
    out: list[tuple[str, str | None, str]] = []
    for subset in SUBSETS:
        path = reference_dir / f"vru_accident/Model_Response/VQA/{model}/{subset}_VQA_response.json"
        for questions in json.loads(path.read_text()).values():
            for category, r in questions.items():
                out.append((category, r["pred"], r["GT"]))
    return out


@pytest.mark.parametrize("model", MODELS)
def test_vru_predictions_map_to_leading_letter(reference_dir: Path, model: str) -> None:
    rows = _responses(reference_dir, model)
    assert len(rows) == 6000
    for _, pred, _ in rows:
        if pred is None:
            assert extract_choice(pred) is None  # type: ignore[arg-type]
        else:
            assert extract_choice(pred) == pred.strip()[0], pred


def test_vru_long_predictions(reference_dir: Path) -> None:
    """Gemini's "D. urban"-style predictions (26) are read; Qwen2-VL's None ones are not."""
    gemini = [p for _, p, _ in _responses(reference_dir, "Gemini_15_flash") if p and len(p) > 1]
    assert len(gemini) == 26
    assert Counter(extract_choice(p) for p in gemini) == Counter(p[0] for p in gemini)
    qwen = [p for _, p, _ in _responses(reference_dir, "Qwen2_VL_7B")]
    assert sum(p is None for p in qwen) == 451


def _accuracy(rows: list[tuple[str, str | None, str]]) -> tuple[int, ...]:
    correct = Counter(c for c, p, gt in rows if p is not None and extract_choice(p) == gt)
    return tuple(correct[c] for c in CATEGORIES)


@pytest.mark.parametrize("model", ["Qwen2_VL_7B", "LLaVA_Video", "InternVL3_8B"])
def test_vru_published_accuracy(reference_dir: Path, model: str) -> None:
    counts = _accuracy(_responses(reference_dir, model))
    assert counts == PUBLISHED[model]
    if model == "Qwen2_VL_7B":
        assert round(sum(counts) / 60, 2) == 52.05  # acc_avg over the six categories


def test_vru_gemini_accuracy_counts_prefixed_letters(reference_dir: Path) -> None:
    """The published Gemini figures compare the whole prediction with the letter, so "D. urban"
    counts as wrong there; the extractor reads it as D. The difference is exactly the long
    predictions whose first character is the ground truth."""
    rows = _responses(reference_dir, "Gemini_15_flash")
    bonus = Counter(c for c, p, gt in rows if p and len(p) > 1 and p[0] == gt)
    counts = _accuracy(rows)
    assert (
        tuple(n - bonus[c] for n, c in zip(counts, CATEGORIES, strict=True))
        == PUBLISHED["Gemini_15_flash"]
    )


def _annotations(reference_dir: Path) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for subset in SUBSETS:
        path = reference_dir / f"vru_accident/MetaData/{subset}/{subset}_VQA_annotation.json"
        for questions in json.loads(path.read_text()).values():
            out.extend(questions.values())
    return out


def test_vru_option_strings(reference_dir: Path) -> None:
    annotations = _annotations(reference_dir)
    assert len(annotations) == 6000
    for a in annotations:
        options = parse_options(a["options"])
        assert [letter for letter, _ in options] == ["A", "B", "C", "D"], a["options"]
        assert all(text for _, text in options)
        # the options are the string's pieces, in order, with their markers
        joined = "".join(f"{letter}{text}" for letter, text in options)
        assert re.sub(r"[\s.,;]", "", joined) == re.sub(r"[\s.,;]", "", a["options"])


def test_vru_option_text_answers(reference_dir: Path) -> None:
    """An answer that repeats one option's text maps to that option's letter.

    Skipped: options whose text occurs twice in a question, and texts that themselves hold a
    letter marker like "pedestrians. D. Traffic ..." (defects of a few annotation strings).
    """
    checked = 0
    for a in _annotations(reference_dir):
        options = parse_options(a["options"])
        texts = [text for _, text in options]
        for letter, text in options:
            key = text.lower().strip(" .")
            if sum(t.lower().strip(" .") == key for t in texts) > 1:
                continue
            if re.search(r"\b[A-D][.)]\s", text):
                continue
            assert extract_choice(text, options=texts) == letter, (text, texts)
            checked += 1
    assert checked > 23900


def _sft_examples(reference_dir: Path) -> tuple[str, str]:
    prompt = (reference_dir / "vad_r1/sft_user_prompt.txt").read_text()
    abnormal = prompt.split("Example Output for Abnormal Videos:")[1]
    abnormal = abnormal.split("For normal videos")[0].strip()
    normal = prompt.split("Example Output for Normal Videos:")[1].strip()
    return abnormal, normal


def test_vad_r1_prompt_examples(reference_dir: Path) -> None:
    abnormal, normal = _sft_examples(reference_dir)
    assert format_ok(abnormal)
    assert format_ok(normal)
    a = parse_vad_r1(abnormal)
    assert a.problems == []
    assert a.steps == {
        1: "The video shows ...",
        2: "Next, we observe an abnormal event ...",
        3: "Based on these observations ...",
        4: "As a result, this behavior ...",
    }
    assert a.which == "..."
    assert a.what == "a pedestrian ..."
    assert a.when == (0.121, 0.826)
    assert a.where == "lower-left area of the frame"
    assert a.why == "pedestrians are expected to ..."
    assert a.how == "such behavior could ..."
    assert vad_r1_official_class(abnormal) == "Abnormal"
    assert vad_r1_official_when(abnormal) == (0.121, 0.826)
    n = parse_vad_r1(normal)
    assert n.problems == []
    assert n.steps == {1: "The video shows scenes ...", 2: "Based on the described scenes ..."}
    assert (n.which, n.what, n.why) == ("Normal", "people are ...", "...")
    assert (n.when, n.where, n.how) == (None, None, None)
    assert vad_r1_official_class(normal) == "Normal"
    assert vad_r1_official_when(normal) == (0.0, 0.0)
    # the two examples glued together: not one valid output
    assert not format_ok(abnormal + "\n" + normal)


@pytest.mark.parametrize("name", ["coarse_llm_scores_raw.json", "fine_nothink_llm_scores_raw.json"])
def test_vadtree_llm_scores(reference_dir: Path, name: str) -> None:
    data = json.loads((reference_dir / "ucf_crime/vadtree" / name).read_text())["vid_score"]
    n = 0
    for segments in data.values():
        for stored, *rest in segments.values():
            text = rest[-1]
            assert extract_score(text) == pytest.approx(stored), text[-200:]
            n += 1
    assert n == {"coarse_llm_scores_raw.json": 2248, "fine_nothink_llm_scores_raw.json": 6365}[name]
