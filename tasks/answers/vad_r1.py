"""Vad-R1 style tagged answers: ``<think><step1>..</step1>..</think><answer>..<which>..</which>..``.

Two kinds of readers:

- :func:`parse_vad_r1` is tolerant and reports what it had to tolerate (``problems``);
- :func:`vad_r1_official_class`, :func:`vad_r1_official_when` and :func:`strip_tags` reproduce
  the official Vad-R1 evaluation's regular expressions exactly (first match, case-sensitive
  tags, no stripping), so numbers computed with them are comparable with published ones.

:func:`format_ok` is the format rule of the Vad-R1 format reward, written here as our own
regular expression.

Tag conventions of :func:`parse_vad_r1`:

- tag names are case-insensitive (``<Which>``), and spaces inside the brackets are allowed;
- the FIRST occurrence of a tag wins (as the official ``re.search``); later ones are reported
  as "repeated <tag> (first used)";
- a tag's content runs to its closing tag; a missing closing tag is tolerated (truncated
  generations): the content then runs to the next opening tag of any Vad-R1 tag (for
  ``<think>``: the next ``<answer>``; for ``<answer>``: the next ``<think>``), to a closing
  ``</think>``/``</answer>``, or to the end of the text, and "unclosed <tag>" is reported.
  Tags therefore do not nest, except steps inside ``<think>`` and fields inside ``<answer>``;
- steps are read inside ``<think>`` and fields (which, what, ...) inside ``<answer>``; one found
  only elsewhere is used and reported ("<which> outside <answer>");
- contents are stripped; an empty tag gives "".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "VadR1Answer",
    "format_ok",
    "parse_vad_r1",
    "parse_when",
    "strip_tags",
    "vad_r1_official_class",
    "vad_r1_official_when",
]

_CONTAINERS = ("think", "answer")
_STEPS = ("step1", "step2", "step3", "step4")
_FIELDS = ("which", "what", "when", "where", "why", "how")
_NAMES = _CONTAINERS + _STEPS + _FIELDS
_TAG = re.compile(r"<\s*(/?)\s*(" + "|".join(_NAMES) + r")\s*>", re.IGNORECASE)


@dataclass
class VadR1Answer:
    """One parsed Vad-R1 style output. Absent tags are None; ``steps`` maps 1..4 to text."""

    think: str | None = None
    answer: str | None = None
    steps: dict[int, str] = field(default_factory=dict)
    which: str | None = None
    what: str | None = None
    when: tuple[float, float] | None = None
    where: str | None = None
    why: str | None = None
    how: str | None = None
    when_text: str | None = None  # the raw content of <when>
    problems: list[str] = field(default_factory=list)

    @property
    def is_normal(self) -> bool | None:
        """True if ``which`` reads "Normal" (case, quotes and final period ignored)."""
        if self.which is None:
            return None
        return self.which.strip().strip("\"'.").strip().lower() == "normal"


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    name: str
    close: bool


def _tokens(text: str) -> list[_Tok]:
    return [
        _Tok(m.start(), m.end(), m.group(2).lower(), m.group(1) == "/") for m in _TAG.finditer(text)
    ]


def _ends(tag: str, tok: _Tok) -> bool:
    """Whether ``tok`` ends an unclosed ``tag``'s content."""
    if tag == "think":
        return tok.name == "answer" or (tok.name == "think" and not tok.close)
    if tag == "answer":
        return tok.name == "think" or (tok.name == "answer" and not tok.close)
    return not tok.close or tok.name in _CONTAINERS


def _find(
    text: str, toks: list[_Tok], tag: str, lo: int = 0, hi: int | None = None
) -> tuple[str, bool, int, int] | None:
    """Content of the first ``<tag>`` opening in [lo, hi): (content, closed, start, end)."""
    hi = len(text) if hi is None else hi
    for i, t in enumerate(toks):
        if t.name != tag or t.close or t.start < lo or t.end > hi:
            continue
        for u in toks[i + 1 :]:
            if u.start >= hi:
                break
            if u.name == tag and u.close:
                return text[t.end : u.start].strip(), True, t.end, u.start
            if _ends(tag, u):
                return text[t.end : u.start].strip(), False, t.end, u.start
        return text[t.end : hi].strip(), False, t.end, hi
    return None


_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_WHEN = re.compile(
    r"(" + _NUM + r")\s*(?:,|-|–|—|~|\bto\b|\band\b)\s*(" + _NUM + r")", re.IGNORECASE
)


def parse_when(text: str) -> tuple[tuple[float, float] | None, list[str]]:
    """A normalised time range from ``<when>`` content, and the problems found.

    Accepts "[0.121, 0.826]", "[0.1,0.8]", "(0.1, 0.8)", "0.1 - 0.8", "0.1 to 0.8" (the first
    pair found). A reversed range is swapped ("when start > end (swapped)"); values outside
    [0, 1] are kept and reported ("when outside [0, 1]"); no pair gives
    ``(None, ["when not parseable"])``.

    >>> parse_when("[0.8, 0.2]")
    ((0.2, 0.8), ['when start > end (swapped)'])
    """
    m = _WHEN.search(text) if isinstance(text, str) else None
    if m is None:
        return None, ["when not parseable"]
    a, b = float(m.group(1)), float(m.group(2))
    problems: list[str] = []
    if a > b:
        a, b = b, a
        problems.append("when start > end (swapped)")
    if not (0.0 <= a <= 1.0 and 0.0 <= b <= 1.0):
        problems.append("when outside [0, 1]")
    return (a, b), problems


def parse_vad_r1(text: str) -> VadR1Answer:
    """Parse a Vad-R1 style output tolerantly; see the module docstring for the conventions.

    ``problems`` lists, in this order: repeated tags, missing/unclosed ``<think>`` and
    ``<answer>``, unclosed steps and fields, fields/steps found outside their container,
    missing ``<which>``, fields and steps missing for the form announced by ``<which>``
    (Normal: steps 1-2, what, why; otherwise: steps 1-4, what, when, where, why, how), and
    ``<when>`` problems (see :func:`parse_when`).

    >>> a = parse_vad_r1("<answer>It is <which>Fighting</which> at <when>[0.1, 0.5]</when>")
    >>> a.which, a.when, a.problems[:2]
    ('Fighting', (0.1, 0.5), ['missing <think>', 'unclosed <answer>'])
    """
    out = VadR1Answer()
    if not isinstance(text, str):
        out.problems.append("not a text")
        return out
    toks = _tokens(text)
    for name in _NAMES:
        if sum(1 for t in toks if t.name == name and not t.close) > 1:
            out.problems.append(f"repeated <{name}> (first used)")
    regions: dict[str, tuple[int, int]] = {}
    for name in _CONTAINERS:
        found = _find(text, toks, name)
        if found is None:
            out.problems.append(f"missing <{name}>")
            continue
        content, closed, start, end = found
        setattr(out, name, content)
        regions[name] = (start, end)
        if not closed:
            out.problems.append(f"unclosed <{name}>")
    values: dict[str, str] = {}
    for container, names in (("think", _STEPS), ("answer", _FIELDS)):
        for name in names:
            found = None
            if container in regions:
                found = _find(text, toks, name, *regions[container])
            if found is None:
                found = _find(text, toks, name)
                if found is not None and container in regions:
                    out.problems.append(f"<{name}> outside <{container}>")
            if found is None:
                continue
            values[name] = found[0]
            if not found[1]:
                out.problems.append(f"unclosed <{name}>")
    out.steps = {int(n[-1]): values[n] for n in _STEPS if n in values}
    out.which, out.what = values.get("which"), values.get("what")
    out.where, out.why, out.how = values.get("where"), values.get("why"), values.get("how")
    out.when_text = values.get("when")
    if out.which is None:
        out.problems.append("missing <which>")
    else:
        expected = (
            ("step1", "step2", "what", "why")
            if out.is_normal
            else ("step1", "step2", "step3", "step4", "what", "when", "where", "why", "how")
        )
        out.problems.extend(f"missing <{n}>" for n in expected if n not in values)
    if out.when_text is not None:
        out.when, when_problems = parse_when(out.when_text)
        out.problems.extend(when_problems)
    return out


_OFFICIAL_WHICH = re.compile(r"<which>(.*?)</which>", re.DOTALL)
_OFFICIAL_WHEN = re.compile(r"<when>\[([0-9.]+)\s*,\s*([0-9.]+)\]</when>")


def vad_r1_official_class(text: str) -> str:
    """The official Vad-R1 detection rule: "Normal" or "Abnormal".

    "Normal" iff the first ``<which>(.*?)</which>`` capture is exactly "Normal"; "Abnormal"
    otherwise, also when the tag is missing.

    >>> [vad_r1_official_class(f"<which>{w}</which>") for w in ("Normal", "normal", " Normal")]
    ['Normal', 'Abnormal', 'Abnormal']
    """
    m = _OFFICIAL_WHICH.search(text) if isinstance(text, str) else None
    return "Normal" if m is not None and m.group(1) == "Normal" else "Abnormal"


def vad_r1_official_when(text: str) -> tuple[float, float]:
    """The first ``<when>[a, b]</when>`` as floats, default (0.0, 0.0) - the official rule.

    Where the official code would crash (a capture such as "0.1.2" that is not a float), this
    returns the default instead.

    >>> vad_r1_official_when("<when>[0.121, 0.826]</when>"), vad_r1_official_when("none")
    ((0.121, 0.826), (0.0, 0.0))
    """
    m = _OFFICIAL_WHEN.search(text) if isinstance(text, str) else None
    if m is None:
        return 0.0, 0.0
    try:
        return float(m.group(1)), float(m.group(2))
    except ValueError:
        return 0.0, 0.0


_ANY_TAG = re.compile(r"<[^>]+>")


def strip_tags(text: str) -> str:
    """Remove every ``<...>`` tag and every newline (the official reasoning-eval normalisation).

    >>> strip_tags("<answer>\\nA <b>man</b> runs.\\n</answer>")
    'A man runs.'
    """
    if not isinstance(text, str):
        return ""
    return _ANY_TAG.sub("", text).replace("\n", "")


_NO_TAG = r"(?:(?!</?(?:" + "|".join(_NAMES) + r")>).)*"


def _element(name: str, body: str = _NO_TAG) -> str:
    return f"<{name}>{body}</{name}>"


def _form(steps: int, fields: tuple[str, ...], which: str = _NO_TAG) -> re.Pattern[str]:
    think = r"\s*".join(_element(f"step{i}") for i in range(1, steps + 1))
    answer = _NO_TAG.join(_element(f, which if f == "which" else _NO_TAG) for f in fields)
    return re.compile(
        rf"\s*<think>\s*{think}\s*</think>\s*<answer>{_NO_TAG}{answer}{_NO_TAG}</answer>\s*",
        re.DOTALL,
    )


_ABNORMAL_FORM = _form(4, _FIELDS)
_NORMAL_FORM = _form(2, ("which", "what", "why"), which="Normal")


def format_ok(text: str) -> bool:
    """Whether ``text`` has the complete Vad-R1 format, abnormal or normal form.

    Abnormal form: ``<think>`` holding ``<step1>``..``<step4>`` in order, then ``<answer>``
    holding ``<which>``, ``<what>``, ``<when>``, ``<where>``, ``<why>``, ``<how>`` in order.
    Normal form: ``<think>`` holding ``<step1>``, ``<step2>``; ``<answer>`` holding
    ``<which>Normal</which>``, ``<what>``, ``<why>``. Tags are lower-case and appear exactly
    once; whitespace may separate the think-level tags, any text may surround the fields inside
    ``<answer>`` (a paragraph), and only whitespace may precede ``<think>`` or follow
    ``</answer>``. Tag contents are not checked (``<when>`` need not parse).

    >>> format_ok("<think><step1>s</step1><step2>n</step2></think>"
    ...           "<answer>It is <which>Normal</which>: <what>w</what>, <why>y</why>.</answer>")
    True
    """
    if not isinstance(text, str):
        return False
    return bool(_ABNORMAL_FORM.fullmatch(text) or _NORMAL_FORM.fullmatch(text))
