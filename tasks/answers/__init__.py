"""Answer extractors shared by all tasks and methods: free text in, a typed value out.

Every extractor is a pure function that returns None (never raises) when the text cannot be
read; callers count those answers as unparsed.

- yes/no (:mod:`.yes_no`): :func:`extract_yes_no`, :func:`yes_probability`;
- multiple choice (:mod:`.choice`): :func:`extract_choice`, :func:`parse_options`,
  :func:`split_question_options`;
- Vad-R1 tagged answers (:mod:`.vad_r1`): :func:`parse_vad_r1` (:class:`VadR1Answer`),
  :func:`parse_when`, :func:`format_ok`, and the official-eval rules
  :func:`vad_r1_official_class`, :func:`vad_r1_official_when`, :func:`strip_tags`;
- numbers (:mod:`.scores`): :func:`extract_score`, :func:`extract_judge_scores`.
"""

from __future__ import annotations

from tasks.answers.choice import extract_choice, parse_options, split_question_options
from tasks.answers.scores import extract_judge_scores, extract_score
from tasks.answers.vad_r1 import (
    VadR1Answer,
    format_ok,
    parse_vad_r1,
    parse_when,
    strip_tags,
    vad_r1_official_class,
    vad_r1_official_when,
)
from tasks.answers.yes_no import extract_yes_no, yes_probability

__all__ = [
    "VadR1Answer",
    "extract_choice",
    "extract_judge_scores",
    "extract_score",
    "extract_yes_no",
    "format_ok",
    "parse_options",
    "parse_vad_r1",
    "parse_when",
    "split_question_options",
    "strip_tags",
    "vad_r1_official_class",
    "vad_r1_official_when",
    "yes_probability",
]
