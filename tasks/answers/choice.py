"""Multiple-choice answers: a letter from free text, and option lists split into (letter, text).

:func:`extract_choice` reads the letter a model chose. The text is searched in tiers; the first
tier that finds something decides (a letter, or "ambiguous", which is returned as None):

0. **Tags.** The content of the first ``<answer>...</answer>`` (unclosed: to the end of the
   text) or of the last ``\\boxed{...}`` is read with tiers 1-5. If that finds nothing (no
   letter and no ambiguity), the whole text is read.
1. **Explicit statements**: "The correct answer is (B)", "Answer: B", "final answer - c.",
   "the correct option is C", "The most likely choice is: B". When several occur, the *last*
   one wins: reasoning models state hypotheses first and conclude last ("If the answer were
   A, ...; so the answer is C").
2. **A leading letter**: "B", "b", "B.", "(B)", "B)", "[B]", "C: sunny day", "D. urban".
3. **Assertions**: "I think it's D", "I'd go with C", "it is most likely B"; then mentions
   "option C" / "choice C". One distinct letter is needed, two or more are ambiguous.
4. **A standalone letter token** anywhere: an upper-case letter (or any letter in brackets)
   not inside a word. One distinct letter is needed, two or more are ambiguous.
5. **Option text** (only with ``options``, and only when tiers 1-4 saw no letter at all): the
   text equals, or contains at word boundaries, exactly one option's text (case-insensitive;
   an option whose match lies inside a longer matching option is dropped).

Conventions:

- Only the letters in ``letters`` count ("I cannot determine" is not a choice of I), matched
  case-insensitively and returned as spelled in ``letters``.
- A bare letter inside a word does not count ("Based on ..." is not B, "Dark clouds" is not D,
  "A.M." is not A). A bare lower-case letter counts only in tiers 1-3.
- "A" and "I" (either case) followed by a space and a word are English words, not choices
  ("A pedestrian crosses ..." is not A), except after an explicit statement, where only the
  lower-case form is treated so ("Answer: A because ..." is A, "the answer is a car" is not).
- Ambiguity: a letter immediately followed by ``or``/``and``/``,``/``/`` and another letter
  ("A or B", "B, C") is ambiguous, and so is a text that merely lists the options
  ("A. cloudy day, B. sunny day, ..."). Ambiguous answers give None.
- Markdown emphasis (``*``, backticks) is ignored: "**C**" is C.

:func:`parse_options` splits VRU-Accident's one-line option strings; :func:`split_question_options`
separates a VANE-style question from its inline or one-per-line "A) ..." options.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["extract_choice", "parse_options", "split_question_options"]

_AMBIGUOUS = "\x00ambiguous"  # internal sentinel: a tier saw two different letters
_MARKDOWN = re.compile(r"[*`]+")
_ARTICLE_FOLLOW = re.compile(r"[ \t]+[A-Za-z]")
_FLAGS = re.IGNORECASE | re.DOTALL


@dataclass(frozen=True)
class _Patterns:
    canon: dict[str, str]  # upper-cased letter -> letter as given
    explicit: re.Pattern[str]
    leading: re.Pattern[str]
    assertion: re.Pattern[str]
    mention: re.Pattern[str]
    token: re.Pattern[str]
    alternative: re.Pattern[str]


def _token(alt: str) -> str:
    """A letter token: bracketed (group ``b``) or bare and not inside a word (group ``u``)."""
    return (
        rf"(?:[(\[{{]\s*(?P<b>{alt})\s*[)\]}}]"
        rf"|(?<![\w'’.\-])(?P<u>{alt})(?![\w'’])(?!\.\w)(?!-\w))"
    )


@functools.lru_cache(maxsize=64)
def _patterns(letters: tuple[str, ...]) -> _Patterns:
    alt = "|".join(re.escape(x) for x in sorted(letters, key=len, reverse=True))
    tok = _token(alt)
    key = (
        r"(?:\banswer\b|\b(?:correct|right|best|final|proper|appropriate|most\s+\w+)\s+"
        r"(?:option|choice)\b)"
    )
    connect = (
        r"(?:\s*(?:\bis\b|\bwould\s+be\b|\bshould\s+be\b|\bwill\s+be\b|\bmust\s+be\b"
        r"|\bseems\s+to\s+be\b|\bappears\s+to\s+be\b|[:=\-–—]))*"
    )
    prefix = r"\s*(?:(?:option|choice|letter)\s*:?\s*)?"
    assertion = (
        r"(?:\bit'?s\b|\bit’s\b|\bit\s+is\b|\bthat\s+is\b"
        r"|\bi\s+(?:would\s+|will\s+|'d\s+|’d\s+)?(?:choose|chose|pick|select|go\s+with)\b"
        r"|\bgo(?:ing)?\s+with\b"
        r"|\bi\s+(?:think|believe|guess|would\s+say|'d\s+say|’d\s+say)\b"
        r"(?:\s+(?:that\s+)?(?:it'?s|it’s|it\s+is|the\s+answer\s+is))?"
        r"|\b(?:is|be)\s+(?:most\s+)?(?:likely|probably)\b)"
    )
    return _Patterns(
        canon={x.upper(): x for x in letters},
        explicit=re.compile(key + connect + prefix + tok, _FLAGS),
        leading=re.compile(r"\A\s*[\"'“‘]?\s*" + tok, _FLAGS),
        assertion=re.compile(assertion + r"\s*:?\s*(?:(?:option|choice)\s+)?" + tok, _FLAGS),
        mention=re.compile(r"\b(?:option|choice)\s*:?\s*" + tok, _FLAGS),
        token=re.compile(tok, _FLAGS),
        alternative=re.compile(
            r"\s*(?:,|/|&|\bor\b|\band\b|\bvs\.?)\s*(?:(?:option|choice)\s+)?" + tok, _FLAGS
        ),
    )


def _accept(
    m: re.Match[str],
    text: str,
    *,
    lower_ok: bool,
    article: str,
    alternative: re.Pattern[str] | None = None,
) -> str | None:
    """The upper-cased letter of token match ``m``, or None when it is not a choice.

    ``article``: "all" rejects A/I of either case followed by a word, "lower" only a/i; not
    when ``alternative`` matches next ("A or B" is a (then ambiguous) choice).
    """
    if m.group("b") is not None:
        return m.group("b").upper()
    u = m.group("u")
    is_lower = u != u.upper()
    if is_lower and not lower_ok:
        return None
    guard = article == "all" or (article == "lower" and is_lower)
    if (
        guard
        and u.upper() in ("A", "I")
        and _ARTICLE_FOLLOW.match(text, m.end())
        and (alternative is None or alternative.match(text, m.end()) is None)
    ):
        return None
    return u.upper()


def _with_alternative(
    p: _Patterns, m: re.Match[str], text: str, letter: str, *, lower_ok: bool, article: str
) -> str:
    """``letter``, or the ambiguity sentinel if "or <other letter>" follows the token."""
    alt = p.alternative.match(text, m.end())
    if alt is not None:
        other = _accept(alt, text, lower_ok=lower_ok, article=article)
        if other is not None and other != letter:
            return _AMBIGUOUS
    return letter


def _distinct(letters: list[str]) -> str | None:
    if not letters:
        return None
    return letters[0] if len(set(letters)) == 1 else _AMBIGUOUS


def _norm(s: str) -> str:
    return " ".join(s.lower().split()).strip(" .,;:!?\"'")


def _by_option_text(text: str, letters: Sequence[str], options: Sequence[str]) -> str | None:
    norm_text = _norm(text)
    if not norm_text:
        return None
    pairs = [(u, _norm(o)) for u, o in zip(letters, options, strict=False) if _norm(o)]
    exact = [u for u, o in pairs if o == norm_text]
    if exact:
        return _distinct(exact)
    found = [
        (u, o)
        for u, o in pairs
        if re.search(r"(?<!\w)" + re.escape(o) + r"(?!\w)", norm_text) is not None
    ]
    # drop an option found only because a longer found option contains it ("day" / "sunny day")
    kept = [u for u, o in found if not any(o != o2 and o in o2 for _, o2 in found)]
    return kept[0] if len(set(kept)) == 1 else None


def _tiers(
    text: str, p: _Patterns, letters: Sequence[str], options: Sequence[str] | None
) -> str | None:
    """Tiers 1-5 on markdown-free ``text``: an upper-cased letter, the sentinel, or None."""
    # 1. explicit statements, last one wins
    last: str | None = None
    for m in p.explicit.finditer(text):
        letter = _accept(m, text, lower_ok=True, article="lower", alternative=p.alternative)
        if letter is not None:
            last = _with_alternative(p, m, text, letter, lower_ok=True, article="lower")
    if last is not None:
        return last
    # 2. leading letter (a text that lists the options is not an answer)
    m0 = p.leading.match(text)
    if m0 is not None:
        letter = _accept(m0, text, lower_ok=True, article="all", alternative=p.alternative)
        if letter is not None:
            if len(parse_options(text)) >= 2 or len(split_question_options(text)[1]) >= 2:
                return _AMBIGUOUS
            return _with_alternative(p, m0, text, letter, lower_ok=True, article="all")
    # 3. assertions, then "option X" mentions
    # ("option A is wrong" names the letter A: no article rule after option/choice)
    for pattern, article in ((p.assertion, "all"), (p.mention, "lower")):
        found: list[str] = []
        for m in pattern.finditer(text):
            letter = _accept(m, text, lower_ok=True, article=article, alternative=p.alternative)
            if letter is not None:
                found.append(_with_alternative(p, m, text, letter, lower_ok=True, article=article))
        decided = _distinct(found)
        if decided is not None:
            return decided
    # 4. standalone tokens
    tokens = [
        x
        for m in p.token.finditer(text)
        if (x := _accept(m, text, lower_ok=False, article="all", alternative=p.alternative))
        is not None
    ]
    if tokens:
        return _distinct(tokens)
    # 5. option text
    if options:
        return _by_option_text(text, letters, options)
    return None


_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", _FLAGS)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def extract_choice(
    text: str,
    letters: Sequence[str] = ("A", "B", "C", "D"),
    options: Sequence[str] | None = None,
) -> str | None:
    """The option letter chosen in ``text``, as spelled in ``letters``; None if absent/ambiguous.

    ``options`` are the option texts aligned with ``letters`` (used only by the last tier).
    The precedence of the tiers and the conventions are in the module docstring.

    >>> extract_choice("The correct answer is (B).")
    'B'
    >>> extract_choice("answer: (c)")
    'C'
    >>> extract_choice("B. A pedestrian was hit")
    'B'
    >>> extract_choice("A pedestrian crosses the road") is None
    True
    >>> extract_choice("sunny day", options=["cloudy day", "sunny day", "stormy night"])
    'B'
    >>> extract_choice("A or B") is None
    True
    """
    if not isinstance(text, str) or not letters:
        return None
    p = _patterns(tuple(letters))
    clean = _MARKDOWN.sub("", text)
    inner: list[str] = []
    tag = _ANSWER_TAG.search(clean)
    if tag is not None:
        inner.append(tag.group(1))
    boxed = _BOXED.findall(clean)
    if boxed:
        inner.append(boxed[-1])
    result: str | None = None
    for part in inner:
        result = _tiers(part, p, letters, options)
        if result is not None:
            break
    if result is None:
        result = _tiers(clean, p, letters, options)
    if result is None or result == _AMBIGUOUS:
        return None
    return p.canon.get(result)


def _marker_letter(start: str, k: int) -> str:
    return chr(ord(start) + k)


_FIRST_OPTION = re.compile(r"\A\s*\(?([A-Z])[.)]\s*")


def parse_options(options: str) -> list[tuple[str, str]]:
    """Split a one-line option string into ``[(letter, text), ...]``; [] if it has no options.

    The string must start with a letter marker ("A." or "A)"). The next option starts at the
    first ``", B."`` after it: a comma or semicolon, optional spaces, the *next* letter and a
    period or closing parenthesis, so option texts may contain commas and periods. Only if
    there is none, a marker between spaces (``" B. "``) also counts; VRU-Accident has 13
    option strings written "... surrounding. B. Drivers ..." or "... careful B. Cyclists ...".
    Texts are stripped; a final period of a text is kept.

    >>> parse_options("A. cloudy day, B. sunny day, C. stormy night, D. rainy afternoon")[1]
    ('B', 'sunny day')
    >>> parse_options("A. Driver was speeding, B. Cyclist does not notice it., C.Other")[1:]
    [('B', 'Cyclist does not notice it.'), ('C', 'Other')]
    >>> parse_options("A. Look around. B. Signal")
    [('A', 'Look around.'), ('B', 'Signal')]
    """
    if not isinstance(options, str):
        return []
    m = _FIRST_OPTION.match(options)
    if m is None:
        return []
    letter = m.group(1)
    pos = m.end()
    out: list[tuple[str, str]] = []
    while True:
        nxt = _marker_letter(letter, 1)
        boundary = None
        if nxt <= "Z":
            boundary = re.compile(r"[,;]\s*\(?" + nxt + r"[.)]\s*").search(options, pos)
            if boundary is None:
                boundary = re.compile(r"\s+\(?" + nxt + r"[.)]\s+").search(options, pos)
        end = boundary.start() if boundary is not None else len(options)
        out.append((letter, options[pos:end].strip().rstrip(",;").strip()))
        if boundary is None:
            return out
        letter, pos = nxt, boundary.end()


_STYLES = {
    "paren": r"\(\s*{x}\s*\)",
    "close": r"{x}\)",
    "dot": r"{x}\.(?=\s)",
    "colon": r"{x}:(?=\s)",
}
_MAX_A_MARKERS = 32  # "A" markers tried per style (bounds the work on pathological texts)
_OPTIONS_LABEL = re.compile(r"(?:options|choices|answer choices)\s*:?\s*\Z", re.IGNORECASE)


def _style_marker(style: str, letter: str) -> re.Pattern[str]:
    return re.compile(r"(?:(?<=\s)|(?<=\A))" + _STYLES[style].format(x=letter) + r"\s*")


def split_question_options(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Separate a question from its options written as "A) ... B) ..." (VANE-Bench style).

    Markers are "(A)", "A)", "A." or "A:" (styles tried in this order; the first style giving
    two or more options is used), preceded by whitespace or the start of the text. All options
    use the style of the "A" marker and follow consecutively from A. Of several "A" markers,
    the one starting the longest run wins, the last one on ties (an "A." in the question is not
    an option). Options may be inline or one per line; the last option ends at the end of its
    line (a trailing instruction line is not part of it). A trailing "Options:" label is
    removed from the question. Without two options the result is ``(text.strip(), [])``.

    >>> split_question_options("What happens? A) a car appears B) a man vanishes")
    ('What happens?', [('A', 'a car appears'), ('B', 'a man vanishes')])
    """
    if not isinstance(text, str):
        return "", []
    best: list[tuple[str, int, int]] = []
    for style in _STYLES:
        for k, first in enumerate(_style_marker(style, "A").finditer(text)):
            if k == _MAX_A_MARKERS:
                break
            found: list[tuple[str, int, int]] = [("A", first.start(), first.end())]
            while found[-1][0] < "Z":
                nxt = _marker_letter(found[-1][0], 1)
                m = _style_marker(style, nxt).search(text, found[-1][2])
                if m is None:
                    break
                found.append((nxt, m.start(), m.end()))
            if len(found) >= max(2, len(best)):
                best = found
        if best:
            break
    if not best:
        return text.strip(), []
    opts: list[tuple[str, str]] = []
    for i, (letter, _, body_start) in enumerate(best):
        if i + 1 < len(best):
            body = text[body_start : best[i + 1][1]]
        else:
            body = text[body_start:].strip().split("\n", 1)[0]
        opts.append((letter, body.strip().rstrip(",;").strip()))
    stem = _OPTIONS_LABEL.sub("", text[: best[0][1]].rstrip()).strip()
    return stem, opts
