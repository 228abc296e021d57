"""Numeric answers: one anomaly score (LAVAD-style "[0.8]") and LLM-judge score sets.

:func:`extract_score` reads a single score; :func:`extract_judge_scores` reads a judge's named
scores (``{"reasonability": 0.8, ...}``). Both return None rather than guess.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["extract_judge_scores", "extract_score"]

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_BRACKETED = re.compile(r"\[\s*(" + _NUM + r")\s*(%?)\s*\]")
_KEYWORD = re.compile(
    r"\b(?:anomaly\s+score|score|rating|probability|likelihood)\b"
    r"(?:\s*(?::|=|\bof\b|\bis\b|\bwould\s+be\b|\bat\b|\babout\b|\baround\b|\bapproximately\b))*"
    r"\s*\[?\s*(" + _NUM + r")(?:\s*/\s*(" + _NUM + r")|\s*(%))?",
    re.IGNORECASE,
)
_FRACTION = re.compile(r"(?<![\d./])(" + _NUM + r")\s*/\s*(" + _NUM + r")(?![\d/])")
_PERCENT = re.compile(r"(?<![\d.])(" + _NUM + r")\s*%")
_LONE = re.compile(r"\A[\s\"'*`]*(" + _NUM + r")[\s\"'*`.]*\Z")


def _in_range(value: float, lo: float, hi: float) -> float | None:
    return value if lo <= value <= hi else None


def _scaled(fraction: float, lo: float, hi: float) -> float | None:
    """A fraction of the full scale (8/10, 80%) mapped onto [lo, hi]."""
    if not 0.0 <= fraction <= 1.0:
        return None
    return lo + fraction * (hi - lo)


def extract_score(text: str, lo: float = 0.0, hi: float = 1.0) -> float | None:
    """A single score in [lo, hi] read from ``text``; None if absent or out of range.

    Tiers, the first that finds something decides (within a tier the LAST occurrence wins,
    because models reason first and answer last):

    1. a bracket holding exactly one number: "[0.8]", "Score: [0.75]", "[ 0.3 ]", "[80%]".
       Brackets holding several numbers are ranges or lists ("[0, 1]", "[0.1, 0.2]") and are
       skipped;
    2. a keyword followed by a number: "score of 0.6", "Score: 0.75", "rating is 8/10",
       "anomaly probability: 70%";
    3. a fraction "8/10" (not part of a date such as 9/3/2015);
    4. a percentage "80%";
    5. a number alone: the whole text, or its last non-empty line ("0.9", "...\\n\\n0.2").

    Fractions and percentages are fractions of the full scale: "8/10" is ``lo + 0.8 * (hi -
    lo)`` (0.8 with the default range, 8 with ``hi=10``). Plain numbers are taken as they are
    and must lie in [lo, hi]: "[1.5]" with the default range is None (the decided tier does not
    fall back to a later one).

    >>> extract_score("Reasoning ... so the scale [0, 1] gives [0.8]")
    0.8
    >>> extract_score("8/10"), extract_score("80%"), extract_score("score of 0.6")
    (0.8, 0.8, 0.6)
    >>> extract_score("[7]") is None
    True
    """
    if not isinstance(text, str):
        return None
    brackets = _BRACKETED.findall(text)
    if brackets:
        number, percent = brackets[-1]
        if percent:
            return _scaled(float(number) / 100.0, lo, hi)
        return _in_range(float(number), lo, hi)
    keyed = list(_KEYWORD.finditer(text))
    if keyed:
        m = keyed[-1]
        value = float(m.group(1))
        if m.group(2) is not None:
            den = float(m.group(2))
            return _scaled(value / den, lo, hi) if den > 0 else None
        if m.group(3):
            return _scaled(value / 100.0, lo, hi)
        return _in_range(value, lo, hi)
    fractions = _FRACTION.findall(text)
    if fractions:
        num, den = (float(x) for x in fractions[-1])
        return _scaled(num / den, lo, hi) if den > 0 else None
    percents = _PERCENT.findall(text)
    if percents:
        return _scaled(float(percents[-1]) / 100.0, lo, hi)
    lines = [line for line in text.splitlines() if line.strip()]
    for candidate in (text, lines[-1] if lines else ""):
        lone = _LONE.match(candidate)
        if lone is not None:
            return _in_range(float(lone.group(1)), lo, hi)
    return None


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SINGLE_QUOTED = re.compile(r"'([^'\n]*)'")
_MARKDOWN_FREE = re.compile(r"[*`]+")


def _objects(text: str) -> list[str]:
    """Balanced ``{...}`` substrings of ``text`` (outermost ones), in order."""
    out: list[str] = []
    depth, start, quote = 0, -1, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
            continue
        if ch == '"' and depth > 0:
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    return out


def _load(obj: str) -> Any:
    """A Python value from a JSON-like object string, or None."""
    attempts = (
        obj,
        _TRAILING_COMMA.sub(r"\1", obj),
        _TRAILING_COMMA.sub(r"\1", _SINGLE_QUOTED.sub(r'"\1"', obj)),
    )
    for attempt in attempts:
        try:
            return json.loads(attempt)
        except (ValueError, RecursionError):
            continue
    try:
        return ast.literal_eval(obj)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(" + _NUM + r")\s*", value)
        return float(m.group(1)) if m else None
    if isinstance(value, Mapping):  # {"reasonability": {"score": 0.8, "reason": ...}}
        for k, v in value.items():
            if isinstance(k, str) and _norm_key(k) in ("score", "value", "rating"):
                return _number(v)
    return None


def _from_mapping(data: Any, keys: Sequence[str]) -> dict[str, float | None] | None:
    """Values of ``keys`` in ``data`` or in a nested mapping that holds all of them."""
    if not isinstance(data, Mapping):
        return None
    by_norm = {_norm_key(k): v for k, v in data.items() if isinstance(k, str)}
    if all(_norm_key(k) in by_norm for k in keys):
        return {k: _number(by_norm[_norm_key(k)]) for k in keys}
    for v in data.values():
        nested = _from_mapping(v, keys)
        if nested is not None:
            return nested
    return None


def _finish(values: Mapping[str, float | None]) -> dict[str, float] | None:
    out: dict[str, float] = {}
    for k, v in values.items():
        if v is None or not 0.0 <= v <= 1.0:
            return None
        out[k] = v
    return out


def extract_judge_scores(
    text: str, keys: Sequence[str] = ("reasonability", "detail", "consistency")
) -> dict[str, float] | None:
    """The judge's score for every key, each in [0, 1]; None if any is missing or invalid.

    Reads, in this order:

    1. a JSON-like object (inside a fenced code block or in prose; single quotes and trailing
       commas tolerated; nested under another key allowed; a value may be a number, a numeric
       string or ``{"score": x}``). Objects are tried from the last to the first; the first
       one that has all keys decides;
    2. "key: value" lines ("Reasonability: 0.8", "- **detail** = 0.7", "consistency score:
       0.9"); the first occurrence of each key counts.

    Keys match case-insensitively, ignoring spaces and punctuation ("Reasonability",
    "reason_ability"). The result uses the spelling of ``keys``.

    >>> extract_judge_scores('```json\\n{"reasonability": 0.8, "detail": 0.6, '
    ...                      '"consistency": 1,}\\n```')
    {'reasonability': 0.8, 'detail': 0.6, 'consistency': 1.0}
    >>> extract_judge_scores("reasonability: 0.8\\ndetail: 0.5") is None
    True
    """
    if not isinstance(text, str) or not keys:
        return None
    candidates: list[str] = []
    for block in _FENCE.findall(text):
        candidates.extend(_objects(block))
    candidates.extend(_objects(text))
    for obj in reversed(candidates):
        values = _from_mapping(_load(obj), keys)
        if values is not None:
            return _finish(values)
    values_by_line: dict[str, float | None] = {}
    for key in keys:
        words = r"[\s_\-]*".join(re.escape(w) for w in re.findall(r"[A-Za-z0-9]+", key))
        m = re.search(
            r"[\"']?\b" + words + r"\b[\"']?(?:\s+score)?\s*[:=\-–]\s*[\"'\[]?\s*(" + _NUM + r")",
            _MARKDOWN_FREE.sub("", text),
            re.IGNORECASE,
        )
        if m is None:
            return None
        values_by_line[key] = float(m.group(1))
    return _finish(values_by_line)
