"""``vane``: VANE-Bench's multiple-choice questions, accuracy per category.

Layout (VANE-Bench's ``VQA_Data`` release, as its inference scripts read it)::

    <group>/<Category>/video_frames/<clip>/<frames>.jpg
    <group>/<Category>/video_qa/<clip>_qa.txt

with ``group`` ``AI-Generated`` or ``Real-World`` (a root that is itself a group, or a single
category folder, works too). A clip is a folder of frame images (see
:mod:`harness.video`). ``<clip>_qa.txt`` is a Python literal list of ``{"Q": question with its
options "A) ..." .. "D) ...", "A": answer letter, possibly "B)"}``; it is read with
:func:`ast.literal_eval` (literals only, no code runs).

Protocol: the prompt is the official instruction to answer with one letter (our wording)
followed by the question; frames: all of the clip's frames up to 16 (``linspace``); greedy.
The official scorer counts an answer as correct iff, after removing one trailing ``")"``, it
is exactly one character equal to the ground truth; we read the letter with
:func:`tasks.answers.extract_choice` (``match="extract"``, default) or apply the official rule
(``match="exact"``). Metrics: ``accuracy`` over all questions, ``acc_<category>`` per
category folder, and ``acc_<group>`` per group.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tasks.answers import split_question_options
from tasks.base import Query, TaskDataError, VideoSample
from tasks.text_task import ChoiceTask, FramePlan, Item, slug

INSTRUCTION = (
    "Answer the multiple-choice question about this video. Reply with the letter of the "
    "correct option (A, B, C or D) and nothing else."
)

def read_qa(path: Path) -> list[tuple[str, str]]:
    """``<clip>_qa.txt`` -> ``[(question, answer letter)]`` (errors name file and item)."""
    try:
        value = ast.literal_eval(path.read_text(encoding="utf-8-sig"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise TaskDataError(f"{path}: not a Python literal list of QA dicts ({exc})") from exc
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise TaskDataError(f"{path}: expected a list of {{'Q': ..., 'A': ...}} dicts")
    out = []
    for i, qa in enumerate(value):
        if not isinstance(qa, dict) or not isinstance(qa.get("Q"), str) \
                or not isinstance(qa.get("A"), str):
            raise TaskDataError(f"{path}: item {i}: expected {{'Q': str, 'A': str}}")
        answer = qa["A"].strip()
        if answer.endswith(")"):
            answer = answer[:-1].strip()
        out.append((qa["Q"], answer.upper()))
    return out


def _category_dirs(root: Path) -> list[tuple[str, str, Path]]:
    """``(group, category, folder)`` of every folder holding ``video_qa``."""
    out = []
    for qa_dir in sorted(root.rglob("video_qa")):
        if not qa_dir.is_dir():
            continue
        cat_dir = qa_dir.parent
        rel = cat_dir.relative_to(root).parts
        group = rel[-2] if len(rel) >= 2 else (root.name if rel else root.parent.name)
        category = cat_dir.name
        out.append((group, category, cat_dir))
    return out


class VaneTask(ChoiceTask):
    name = "vane"
    kind = "mcq"
    headline = ("accuracy",)
    metric_keys = ("accuracy", "acc_[a-z0-9_]+")  # per category folder and per group
    dataset = "VANE-Bench"
    description = "VANE-Bench multiple-choice anomaly questions, accuracy per category"
    frame_plan_default: ClassVar[FramePlan] = FramePlan(16, "linspace")
    sample_dataset = "vane"

    def protocol(self) -> dict[str, Any]:
        return super().protocol() | {"instruction": INSTRUCTION, "match": self.settings.match,
                                     "decoding": {"temperature": 0.0, "max_new_tokens": 16}}

    def read_samples(self, root: Path) -> list[VideoSample]:
        samples = []
        for group, category, cat_dir in _category_dirs(root):
            self.sources[f"{group}/{category}"] = str(cat_dir)
            for qa_file in sorted((cat_dir / "video_qa").glob("*_qa.txt")):
                clip = qa_file.name[: -len("_qa.txt")]
                frames = cat_dir / "video_frames" / clip
                queries, refs = [], {}
                for i, (question, answer) in enumerate(read_qa(qa_file)):
                    _, options = split_question_options(question)
                    qid = str(i)
                    queries.append(Query(qid, f"{INSTRUCTION}\n{question}", category=category,
                                         answer_format="choice", options=tuple(options),
                                         max_new_tokens=16))
                    refs[qid] = answer
                extra: dict[str, Any] = {"group": group, "category": category}
                if not frames.is_dir():
                    extra["unreadable"] = f"{frames}: frame folder not found"
                samples.append(VideoSample(f"{group}/{category}/{clip}", 0, 0.0,
                                           path=frames if frames.is_dir() else None,
                                           extra=extra, queries=tuple(queries),
                                           references=refs))
        return samples

    @staticmethod
    def exact(response: str) -> str | None:
        """VANE's scorer: one trailing ")" removed, then exactly one character."""
        a = response.strip()
        a = a[:-1] if a.endswith(")") else a
        return a if len(a) == 1 else None

    def score(self, items: Sequence[Item]) -> dict[str, Any]:
        by_cat: dict[str, list[bool]] = defaultdict(list)
        by_group: dict[str, list[bool]] = defaultdict(list)
        unparsed = 0
        hits = []
        for it in items:
            pred = self.answer(it)
            unparsed += pred is None
            ok = pred is not None and pred == it.reference
            hits.append(ok)
            by_cat[it.query.category].append(ok)
            by_group[it.video_id.split("/", 1)[0]].append(ok)
        metrics = {"accuracy": float(np.mean(hits))}
        metrics |= {f"acc_{slug(c)}": float(np.mean(h)) for c, h in sorted(by_cat.items())}
        metrics |= {f"acc_{slug(g)}": float(np.mean(h)) for g, h in sorted(by_group.items())}
        counts = {c: {"correct": int(sum(h)), "total": len(h)} for c, h in sorted(by_cat.items())}
        return {"metrics": metrics, "per_category_counts": counts, "unparsed": int(unparsed)}
