"""The opt-in LLM-judge metric: reasonability, detail and consistency in ``[0, 1]``.

Vad-R1 (``3-llm_judge``) and HAWK ask a language model to compare a model's free-text answer
with the reference and rate it. Here the judge is any registered engine (``judge_engine``,
default ``hf``) with any model (``judge_model``; default: the engine's default, which for
``hf`` is the tiny test model, so a real judge must be named). The prompt is ours
(:data:`JUDGE_PROMPT`); ``judge_prompt_file`` loads another (see
:func:`tasks.prompts.load_template`), in which ``{reference}`` and ``{answer}`` are replaced.
The judge answers with a JSON object read by :func:`tasks.answers.extract_judge_scores`;
unreadable verdicts are counted (``judge_unparsed``) and left out of the means.

Result keys: metrics ``judge_reasonability``, ``judge_detail``, ``judge_consistency`` (means
over judged items) and a ``judge`` section recording the engine, model, prompt (system and
user template) and counts. Decoding is greedy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.answers import extract_judge_scores
from tasks.prompts import PromptTemplate, load_template

if TYPE_CHECKING:
    from tasks.text_task import Item, TextTask

JUDGE_KEYS = ("reasonability", "detail", "consistency")
JUDGE_PROMPT = PromptTemplate(
    system="You grade answers about videos against a reference description.",
    user=(
        "Reference description of the video:\n{reference}\n\n"
        "Answer to grade:\n{answer}\n\n"
        "Rate the answer from 0 to 1 on three criteria: reasonability (is its reasoning sound "
        "and its conclusion justified), detail (does it give the specific, relevant details), "
        "consistency (does it agree with the reference, without contradictions). Reply with a "
        'JSON object only, for example {{"reasonability": 0.7, "detail": 0.5, '
        '"consistency": 0.8}}.'
    ),
)


def fill(template: PromptTemplate, reference: str, answer: str) -> str:
    """The user prompt for one pair (``{reference}`` / ``{answer}`` replaced; other braces
    in a loaded template are left alone)."""
    text = template.user
    if template.source == "built-in":
        return text.format(reference=reference, answer=answer)
    return text.replace("{reference}", reference).replace("{answer}", answer)


def judge_texts(engine: Any, pairs: Sequence[tuple[str, str]], template: PromptTemplate,
                max_new_tokens: int = 96, batch_size: int = 8,
                ) -> list[dict[str, float] | None]:
    """One verdict per ``(reference, answer)`` pair (None when unreadable)."""
    from harness.engines.base import Message, Request, SamplingParams

    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    out: list[dict[str, float] | None] = []
    for lo in range(0, len(pairs), batch_size):
        reqs = []
        for i, (ref, ans) in enumerate(pairs[lo:lo + batch_size]):
            msgs: tuple[Message, ...] = (Message.user(fill(template, ref, ans)),)
            if template.system:
                msgs = (Message.system(template.system), *msgs)
            reqs.append(Request(messages=msgs, sampling=sampling, request_id=str(lo + i)))
        for resp in engine.generate(reqs):
            out.append(extract_judge_scores(resp.completions[0].text, JUDGE_KEYS))
    return out


def run_judge(task: TextTask, items: Sequence[Item]) -> dict[str, Any]:
    """Judge a task's items with the engine its settings name; see the module docstring."""
    from harness.registry import ENGINES

    s = task.settings
    template = load_template(s.judge_prompt_file) if s.judge_prompt_file else JUDGE_PROMPT
    engine = ENGINES.get(s.judge_engine)(model=s.judge_model)  # type: ignore[operator]
    try:
        verdicts = judge_texts(engine, task.judge_pairs(items), template,
                               s.judge_max_new_tokens, s.judge_batch_size)
        info = engine.describe()
    finally:
        if hasattr(engine, "close"):
            engine.close()
    ok = [v for v in verdicts if v is not None]
    metrics = {f"judge_{k}": float(np.mean([v[k] for v in ok])) for k in JUDGE_KEYS} if ok \
        else {}
    return {
        "metrics": metrics,
        "engine": s.judge_engine,
        "model": info.get("model", s.judge_model),
        "engine_info": info,
        "prompt": {"source": template.source, "system": template.system,
                   "user": template.user},
        "judged": len(ok),
        "judge_unparsed": len(verdicts) - len(ok),
    }
