"""VRU-Accident: multiple-choice QA (``vru_accident_qa``) and dense captioning
(``vru_accident_caption``), as the official evaluation (``utils/evaluation.py``) scores them.

Files: see :mod:`tasks.formats.vru`. Frames: 8 per video drawn as
``arange(0, T, T / 8)`` (the official PyAV loader of most models); decoding greedy.

``vru_accident_qa``
    Prompt = the annotation's question, a newline, its options string. Six categories per
    video. Metrics: ``acc_<category>`` pooled over the four subsets (1,000 questions each on
    the full test set), ``acc_avg`` = mean of the six category accuracies (the README's
    "AccAVG"), ``acc_avg_<SUBSET>`` = the same mean within one subset, and per subset and
    category in ``breakdown``. An answer is the letter :func:`tasks.answers.extract_choice`
    reads from the response (``match="extract"``, default), or, with ``match="exact"``, the
    official rule: correct iff ``response.strip().upper() == GT`` (the official script applies a
    per-model extractor first; the published response files hold its output). Unreadable or
    missing answers count as wrong (``unparsed``).
``vru_accident_caption``
    Metrics as the official evaluation: ``spice`` (pycocoevalcap on raw strings, corpus F;
    needs Stanford CoreNLP 3.6.0 jars in ``VAD_EVAL_CORENLP_DIR``), ``meteor`` (NLTK on word
    tokens, punctuation tokens removed, case kept, mean over videos), ``comet``
    (``Unbabel/wmt22-comet-da`` from a local path, source "", mean), and ROUGE-1/2/L precision,
    recall and F (rouge-score with stemming, means) as ``rouge1_p`` ... ``rougeL_f``. The
    official script rounds to 3 decimals; we keep full precision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tasks.answers import parse_options
from tasks.base import Query, TaskDataError, VideoSample
from tasks.formats import vru
from tasks.text_task import ChoiceTask, FramePlan, Item, TextTask, slug

CAPTION_PROMPT = (
    "Describe this traffic video in detail as one paragraph: the weather and lighting, the "
    "road and its surroundings, the road users involved and how they move, how the accident "
    "happens, and what follows it."
)
class VruAccidentQaTask(ChoiceTask):
    name = "vru_accident_qa"
    kind = "mcq"
    headline = ("acc_avg", "acc_weather_and_light", "acc_location", "acc_road_type",
                "acc_accident_type", "acc_accident_reason", "acc_prevention_method")
    metric_keys = ("acc_avg", *(f"acc_avg_{s}" for s in vru.SUBSETS),
                   *(f"acc_{slug(c)}" for c in vru.CATEGORIES))
    dataset = "VRU-Accident"
    description = "VRU-Accident multiple-choice QA: six categories, acc_avg (official README)"
    frame_plan_default: ClassVar[FramePlan] = FramePlan(8, "arange")
    sample_dataset = "vru_accident"

    def protocol(self) -> dict[str, Any]:
        return super().protocol() | {
            "match": self.settings.match,
            "acc_avg": "mean of the six category accuracies, each pooled over subsets",
            "decoding": {"temperature": 0.0, "max_new_tokens": 10},
        }

    def read_samples(self, root: Path) -> list[VideoSample]:
        files = vru.subset_files(root, "VQA_annotation.json")
        samples = []
        for subset, path in files.items():
            self.sources[f"vqa/{subset}"] = str(path)
            for sid, cats in vru.read_vqa(path).items():
                queries = []
                refs = {}
                for cat, q in cats.items():
                    options = tuple(parse_options(q["options"]))
                    if not options:
                        raise TaskDataError(f"{path}: video {sid!r}: category {cat!r}: cannot "
                                            f"read options {q['options']!r}")
                    queries.append(Query(cat, f"{q['question']}\n{q['options']}", category=cat,
                                         answer_format="choice", options=options,
                                         max_new_tokens=10))
                    refs[cat] = q["GT"]
                vpath = vru.video_path(root, sid)
                extra: dict[str, Any] = {"subset": subset}
                if vpath is None:
                    extra["unreadable"] = f"video file for {sid!r} not found under {root}"
                samples.append(VideoSample(sid, 0, 0.0, path=vpath, extra=extra,
                                           queries=tuple(queries), references=refs))
        return samples

    def score(self, items: Sequence[Item]) -> dict[str, Any]:
        hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
        unparsed = 0
        for it in items:
            pred = self.answer(it)
            if pred is None:
                unparsed += 1
            subset = it.video_id.split("/", 1)[0]
            hits[(subset, it.query.category)].append(pred is not None and pred == it.reference)
        return accuracy_tables(hits) | {"unparsed": unparsed}


def accuracy_tables(hits: dict[tuple[str, str], list[bool]]) -> dict[str, Any]:
    """Accuracies from ``{(group, category): [correct?]}``: per category pooled over groups
    (``acc_<category>``), ``acc_avg`` (mean over categories), ``acc_avg_<group>`` and the
    per-group, per-category table in ``breakdown``."""
    by_cat: dict[str, list[bool]] = defaultdict(list)
    for (_, cat), h in hits.items():
        by_cat[cat].extend(h)
    metrics: dict[str, float] = {}
    for cat in sorted(by_cat):
        metrics[f"acc_{slug(cat)}"] = float(np.mean(by_cat[cat]))
    metrics["acc_avg"] = float(np.mean([metrics[f"acc_{slug(c)}"] for c in by_cat]))
    breakdown: dict[str, dict[str, Any]] = {}
    for group in sorted({g for g, _ in hits}):
        cats = {c: float(np.mean(h)) for (g, c), h in sorted(hits.items()) if g == group}
        metrics[f"acc_avg_{group}"] = float(np.mean(list(cats.values())))
        breakdown[group] = {"accuracy": cats,
                            "questions": sum(len(h) for (g, _), h in hits.items() if g == group)}
    counts = {cat: {"correct": int(sum(h)), "total": len(h)} for cat, h in sorted(by_cat.items())}
    return {"metrics": metrics, "breakdown": breakdown, "per_category_counts": counts}


class VruAccidentCaptionTask(TextTask):
    name = "vru_accident_caption"
    kind = "caption"
    headline = ("spice", "meteor", "comet", "rouge1_f", "rouge2_f", "rougeL_f")
    metric_keys = ("spice", "meteor", "comet", "rouge(1|2|L)_(p|r|f)")

    @classmethod
    def metric_range(cls, key: str) -> tuple[float, float]:
        """COMET's regression head is not bounded: its segment scores stray a little outside
        [0, 1], so a corpus mean is accepted in [-1, 2]."""
        return (-1.0, 2.0) if key == "comet" else (0.0, 1.0)
    dataset = "VRU-Accident"
    description = "VRU-Accident dense captioning: SPICE, METEOR, COMET, ROUGE (official)"
    frame_plan_default: ClassVar[FramePlan] = FramePlan(8, "arange")
    sample_dataset = "vru_accident"

    def protocol(self) -> dict[str, Any]:
        return super().protocol() | {
            "prompt": CAPTION_PROMPT,
            "spice": "pycocoevalcap Spice on raw strings, corpus F ('All')",
            "meteor": "nltk meteor_score on word tokens, punctuation tokens removed, case kept",
            "comet": "Unbabel/wmt22-comet-da from a local path, src='', batch 8",
            "rouge": "rouge-score rouge1/rouge2/rougeL, use_stemmer=True, P/R/F means",
            "decoding": {"temperature": 0.0, "max_new_tokens": 512},
        }

    def read_samples(self, root: Path) -> list[VideoSample]:
        files = vru.subset_files(root, "Dense_Caption.json")
        samples = []
        for subset, path in files.items():
            self.sources[f"captions/{subset}"] = str(path)
            for sid, gt in vru.read_captions(path).items():
                vpath = vru.video_path(root, sid)
                extra: dict[str, Any] = {"subset": subset}
                if vpath is None:
                    extra["unreadable"] = f"video file for {sid!r} not found under {root}"
                query = Query("caption", CAPTION_PROMPT, category="caption",
                              answer_format="text", max_new_tokens=512)
                samples.append(VideoSample(sid, 0, 0.0, path=vpath, extra=extra,
                                           queries=(query,), references={"caption": gt}))
        return samples

    def judge_pairs(self, items: Sequence[Item]) -> list[tuple[str, str]]:
        return [(str(it.reference), it.response or "") for it in items]

    def score(self, items: Sequence[Item]) -> dict[str, Any]:
        from tasks.metrics.text import (
            Unavailable,
            comet_scores,
            meteor_scores,
            rouge_prf,
            spice_score,
        )

        refs = [str(it.reference) for it in items]
        hyps = [it.response or "" for it in items]
        metrics: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        spice = spice_score({str(i): [r] for i, r in enumerate(refs)},
                            {str(i): h for i, h in enumerate(hyps)})
        if isinstance(spice, Unavailable):
            unavailable["spice"] = spice.reason
        else:
            metrics["spice"] = float(spice)
        metrics["meteor"] = float(np.mean(meteor_scores(refs, hyps, lowercase=False,
                                                        drop_punct=True)))
        comet = comet_scores(refs, hyps, None)
        if isinstance(comet, Unavailable):
            unavailable["comet"] = comet.reason
        else:
            metrics["comet"] = float(np.mean(comet))
        for key, values in rouge_prf(refs, hyps, backend="rouge-score", stemmer=True).items():
            metrics[key] = float(np.mean(values))
        return {"metrics": metrics, "unavailable_metrics": unavailable,
                "unparsed": sum(1 for it in items if not it.response)}
