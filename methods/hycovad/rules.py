"""Rule sets and decisions of HyCoVAD's LLM validator: records and parsers for LLM outputs.

Three kinds of text are parsed (seed paper, Appendix C):

* P_R answers (rule generation per sampled frame): free-form, usually two numbered or headed
  sections ("1. Normal ...", "2. Anomaly ...") with bullets or sub-bullets, often wrapped in
  chatter ("Here are the rules ...", "These rules ...").
* P_A answers (aggregation): the strict ``=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===`` /
  ``- rule`` format, which models also return with markdown ``###`` headers (as the paper's
  own example R_A shows), bold, numbering or chatter.
* P_D answers (decision): ``Anomaly: Yes/No`` and ``Broken Rules: ...``.

Rule parsing (:func:`parse_rules`) is a line-based state machine:

1. Lines are cleaned of markdown (``#`` heading marks, ``===`` runs, ``*``/``_`` emphasis,
   backticks); list markers (``-``, ``*``, ``+``, ``•``, ``1.``, ``1)``, ``a)``, ``iv.``) and
   indentation are recorded. Lines of dots (the template's ``...``) and echoed template
   placeholders (``[normal rule 1]``) are skipped.
2. A line is a *section header* when it mentions exactly one of normal / anomaly
   (``anomal*``/``abnormal*`` -> anomaly, otherwise ``normal*`` -> normal) and either
   (a) is marked as a heading: ``#``, ``===``, a whole-line bold span not ending in ``.``/``!``,
   or a non-list line ending in ``:``; or (b) its whole text is a header phrase: words only
   from a small vocabulary ("rules for", "what constitutes", "activities", "objects", "or",
   "behaviour", ...) around the keyword, e.g. ``1. Normal Activities/Objects``,
   ``RULES FOR ANOMALY ACTIVITIES OR OBJECTS``, ``What constitutes an anomaly activity or
   object in this context.`` A list item ending in ``:`` is a header only under (b)
   (``- Anomalous interactions include:`` is a label, below). ``Normal: rule text`` (a header
   phrase, a colon, more text) is a header plus one rule.
3. A heading that mentions both keywords (a title such as "Rules for normal and anomaly
   detection") or that is chatter ("### Explanation", "Additional considerations:"), and a
   non-list line opening with a chatter label ("Note: ...", "**Explanation:** ...") close the
   current section: what follows is ignored until the next section header. Other
   keyword-less headings (``**Pedestrians:**``, ``- Vehicles:``) are *labels*: the items under
   them (deeper-indented, for a list-item label) are prefixed ``"Label: "``.
4. Inside a section, list items are rules; an indented non-list line right after an item
   continues it. Plain (non-list) lines count as rules only in a section that has no list
   items at all (then "These rules ..."-style chatter lines are skipped); otherwise they are
   chatter and dropped.
5. Fallback when no section header is found at all: lines (list items or plain) whose first
   four words name exactly one of normal / anomaly are assigned to that section whole.

Rule texts are kept as written (markdown removed, whitespace collapsed); parsing does not
de-duplicate. :func:`merge_rule_sets` is the deterministic union used when the LLM's
aggregation cannot be parsed or is empty.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NORMAL_HEADER = "=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ==="
ANOMALY_HEADER = "=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ==="


@dataclass(frozen=True)
class RuleSet:
    """Normal and anomaly rules of one frame (P_R) or one video (P_A), in order."""

    normal: tuple[str, ...] = ()
    anomaly: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when there is no rule at all."""
        return not self.normal and not self.anomaly

    def render(self) -> str:
        """P_A's output format: header, ``- rule`` lines, a blank line, header, ``- rule``
        lines; no trailing newline (an empty section is just its header)."""
        lines = [NORMAL_HEADER, *(f"- {r}" for r in self.normal), "", ANOMALY_HEADER]
        lines += [f"- {r}" for r in self.anomaly]
        return "\n".join(lines)


@dataclass(frozen=True)
class Decision:
    """A parsed P_D answer. ``anomaly`` is None when no Yes/No could be read; ``broken_rules``
    are the listed items as written (explanations included); ``raw`` is the full answer."""

    anomaly: bool | None
    broken_rules: tuple[str, ...]
    raw: str


# ------------------------------------------------------------------------- line handling

_LIST_ITEM = re.compile(
    r"^(?P<indent>[ \t]*)(?:[-*+•·–]|\d{1,3}[.)]|[a-zA-Z][.)]|[ivxIVX]{1,4}[.)])\s+(?P<text>\S.*)$"
)
_DOTS = re.compile(r"^[.\s…]*$")
_PLACEHOLDER_RULE = re.compile(r"^\[?(normal|anomaly) rule \d+\]?$", re.I)
_BOLD_LINE = re.compile(r"^(\*\*|__)(?P<inner>.+?)(\*\*|__)\s*:?\s*$")
_ANOMALY_WORD = re.compile(r"anomal|abnormal", re.I)
_NORMAL_WORD = re.compile(r"(?<!ab)normal", re.I)

_HEADER_VOCAB = frozenset(
    [
        "rules", "rule", "for", "of", "defining", "define", "defines", "what", "constitutes",
        "constitute", "a", "an", "the", "normal", "normality", "normally", "anomaly", "anomalies",
        "anomalous", "abnormal", "abnormality", "abnormalities", "activity", "activities",
        "object", "objects", "or", "and", "behavior", "behaviors", "behaviour", "behaviours",
        "scene", "scenes", "case", "cases", "event", "events", "situation", "situations", "in",
        "this", "context", "detection", "that", "is", "are", "considered", "conditions",
        "condition", "set", "list",
    ]
)
_CHATTER_WORDS = frozenset(
    [
        "note", "notes", "explanation", "explanations", "summary", "conclusion", "additional",
        "considerations", "consideration", "remarks", "disclaimer", "assumptions", "observations",
        "guidelines", "reasoning", "analysis", "interpretation", "important", "key", "overview",
        "description", "final",
    ]
)
_CHATTER_PREFIXES = (
    "here are", "here is", "these rules", "this set", "the above", "by following",
    "by adhering", "in summary", "overall", "i hope", "let me know", "based on", "note",
    "please", "feel free", "these guidelines",
)


@dataclass(frozen=True)
class _Line:
    is_item: bool
    indent: int
    raw_body: str  # text after the list marker, markdown intact
    text: str  # cleaned text


def _clean(text: str) -> str:
    """Remove markdown marks and collapse whitespace."""
    t = text.strip()
    t = re.sub(r"^#+\s*", "", t)
    t = re.sub(r"^=+\s*|\s*=+$", "", t)
    t = t.replace("**", "").replace("__", "").replace("`", "")
    t = re.sub(r"(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])", "", t)
    return re.sub(r"\s+", " ", t).strip()


def _split_line(line: str) -> _Line:
    m = _LIST_ITEM.match(line.replace("\t", "    "))
    if m and not line.lstrip().startswith("**"):
        body = m.group("text")
        return _Line(True, len(m.group("indent")), body, _clean(body))
    indent = len(line) - len(line.lstrip())
    return _Line(False, indent, line.strip(), _clean(line))


def _keyword_kind(text: str) -> str | None:
    """'normal' / 'anomaly' when exactly one keyword occurs, 'both', or None."""
    anom, norm = bool(_ANOMALY_WORD.search(text)), bool(_NORMAL_WORD.search(text))
    return "both" if anom and norm else "anomaly" if anom else "normal" if norm else None


def _is_header_phrase(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    ok = 0 < len(words) <= 14 and all(w in _HEADER_VOCAB for w in words)
    return ok and _keyword_kind(text) in ("normal", "anomaly")


def _is_chatter_label(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    return any(w in _CHATTER_WORDS for w in words[:3])


# --------------------------------------------------------------------------- parse_rules


@dataclass
class _Entry:
    is_item: bool
    indent: int
    text: str


def _marked(ln: _Line) -> bool:
    """A heading mark: ``#``/``===`` on a non-list line, or a whole-line bold span that is not
    a sentence (a bold line ending in ``.``/``!`` is content)."""
    if not ln.is_item and ln.raw_body.startswith(("#", "=")):
        return True
    return bool(_BOLD_LINE.match(ln.raw_body)) and not ln.text.endswith((".", "!"))


def _header_kind(ln: _Line) -> tuple[bool, str | None, str | None]:
    """Classify a line: (is_header, section kind or None, inline rule after 'Header: ')."""
    text = ln.text.rstrip(":").strip()
    marked_heading = _marked(ln)
    ends_colon = ln.text.endswith(":")
    kind = _keyword_kind(text)
    phrase = _is_header_phrase(text) or text.lower().startswith("what constitutes")
    if kind in ("normal", "anomaly") and (
        phrase or marked_heading or (ends_colon and not ln.is_item)
    ):
        return True, kind, None
    if ":" in ln.text and not ends_colon:
        head, rest = ln.text.split(":", 1)
        if _is_header_phrase(head):
            return True, _keyword_kind(head), rest.strip()
    return False, None, None


def _parse_sections(lines: list[_Line]) -> dict[str, list[_Entry]]:
    sections: dict[str, list[_Entry]] = {"normal": [], "anomaly": []}
    current: str | None = None
    label: tuple[bool, int, str] | None = None  # (from a list item, its indent, text)
    prev_item: _Entry | None = None
    for ln in lines:
        if not ln.text:
            prev_item = None
            continue
        is_header, kind, inline = _header_kind(ln)
        if is_header:
            current, label, prev_item = kind, None, None
            if kind and inline:
                sections[kind].append(_Entry(True, ln.indent, inline))
            continue
        if _marked(ln) or ln.text.endswith(":"):
            text = ln.text.rstrip(":").strip()
            if _keyword_kind(text) == "both" or (not ln.is_item and _is_chatter_label(text)):
                current, label, prev_item = None, None, None
            else:
                label, prev_item = (ln.is_item, ln.indent, text), None
            continue
        if not ln.is_item and ":" in ln.text:
            head = ln.text.split(":", 1)[0]
            if len(head.split()) <= 3 and _is_chatter_label(head):  # "Note: ..." closes
                current, label, prev_item = None, None, None
                continue
        if current is None:
            continue
        if not ln.is_item and prev_item is not None and ln.indent > prev_item.indent:
            prev_item.text = f"{prev_item.text} {ln.text}"
            continue
        if label is not None and label[0] and (not ln.is_item or ln.indent <= label[1]):
            label = None
        text = f"{label[2]}: {ln.text}" if label is not None else ln.text
        entry = _Entry(ln.is_item, ln.indent, text)
        sections[current].append(entry)
        prev_item = entry if ln.is_item else None
    return sections


def _section_rules(entries: list[_Entry]) -> tuple[str, ...]:
    if any(e.is_item for e in entries):
        kept = [e.text for e in entries if e.is_item]
    else:
        kept = [e.text for e in entries if not e.text.lower().startswith(_CHATTER_PREFIXES)]
    return tuple(t for t in kept if t and not _PLACEHOLDER_RULE.match(t))


def _fallback(lines: list[_Line]) -> RuleSet:
    found: dict[str, list[str]] = {"normal": [], "anomaly": []}
    for ln in lines:
        kind = _keyword_kind(" ".join(ln.text.split()[:4]))
        if kind in found and ln.text:
            found[kind].append(ln.text)
    return RuleSet(tuple(found["normal"]), tuple(found["anomaly"]))


def parse_rules(text: str) -> RuleSet:
    """Parse a P_R or P_A answer into a :class:`RuleSet` (heuristics: module docstring)."""
    lines = []
    for raw in text.splitlines():
        ln = _split_line(raw)
        # lines of dots (the template's "...") act as blank separators
        lines.append(_Line(False, 0, "", "") if _DOTS.match(ln.text) else ln)
    sections = _parse_sections(lines)
    found_header = any(_header_kind(ln)[1] in ("normal", "anomaly") for ln in lines if ln.text)
    if not found_header:
        return _fallback(lines)
    return RuleSet(_section_rules(sections["normal"]), _section_rules(sections["anomaly"]))


# ----------------------------------------------------------------------- merge_rule_sets


def rule_key(rule: str) -> str:
    """De-duplication key: NFKC, lower case, punctuation removed, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", rule).lower()
    t = re.sub(r"[^\w\s]|_", " ", t)
    return " ".join(t.split())


def _unique(rules: Iterable[str], exclude: set[str] | None = None) -> tuple[str, ...]:
    seen = set(exclude or ())
    out = []
    for rule in rules:
        key = rule_key(rule)
        if key and key not in seen:
            seen.add(key)
            out.append(rule.strip())
    return tuple(out)


def merge_rule_sets(sets: Sequence[RuleSet]) -> RuleSet:
    """Deterministic union of rule sets (the fallback for a failed P_A aggregation).

    * Order: first appearance, scanning the sets in order; the first spelling of a rule wins.
    * De-duplication by :func:`rule_key` (case, whitespace and punctuation insensitive).
    * Every distinct anomaly rule is kept.
    * Worst-case principle: a rule that appears as normal in one set and as anomaly in another
      (same key) is kept as anomaly only (the stricter reading wins).
    """
    anomaly = _unique(r for s in sets for r in s.anomaly)
    anomaly_keys = {rule_key(r) for r in anomaly}
    normal = _unique((r for s in sets for r in s.normal), exclude=anomaly_keys)
    return RuleSet(normal=normal, anomaly=anomaly)


# ------------------------------------------------------------------------ parse_decision

_ANOMALY_LABEL = re.compile(
    r"^(?:\d+[.)]\s*)?(?:is\s+(?:this|it|there)\s+an?\s+)?"
    r"(?:anomal(?:y|ous|ies)(?:\s+(?:scene|detected|status|present))?|answer)"
    r"\s*\??\s*(?:[:=\-–—]+\s*)?(?P<value>.*)$",
    re.I,
)
_YES_NO = re.compile(r"^[\[(\"'“]*\s*(?P<yn>yes|no)\b(?!\s*/)", re.I)
_BROKEN_LABEL = re.compile(
    r"^broken\s+rules?(?:\s*\([^)]*\))?\s*(?:[:=\-–—]+\s*)?(?P<rest>.*)$", re.I
)
_NONE_VALUES = frozenset(
    {"none", "n/a", "na", "nothing", "no rules", "no rules broken", "no broken rules", "-"}
)


def _clean_decision_line(line: str) -> str:
    t = _clean(line)
    m = _LIST_ITEM.match(t)
    return m.group("text").strip() if m else t


def _yes_no(text: str) -> bool | None:
    m = _YES_NO.match(text.strip())
    return None if m is None else m.group("yn").lower() == "yes"


def _is_none(text: str) -> bool:
    t = text.strip().strip("[]()\"'“”.").strip().lower()
    return t in _NONE_VALUES or bool(re.match(r"^none\b", t))


def _read_anomaly(lines: list[str]) -> bool | None:
    for i, line in enumerate(lines):
        m = _ANOMALY_LABEL.match(line)
        if m is None:
            continue
        value = m.group("value").strip()
        if value:
            yn = _yes_no(value)
            if yn is not None:
                return yn
            continue
        following = [t for t in lines[i + 1:] if t][:1]  # "Anomaly:" with the answer below
        if following and (yn := _yes_no(following[0])) is not None:
            return yn
    first = next((t for t in lines if t), "")
    return _yes_no(first)


def _inline_rules(rest: str) -> list[str]:
    body = rest.strip()
    if (m := _LIST_ITEM.match(body)) is not None:
        body = m.group("text").strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    quoted = re.findall(r"\"([^\"]+)\"|“([^”]+)”", body)
    if quoted:
        return [a or b for a, b in quoted]
    parts = body.split(";") if ";" in body else [body]
    return [p.strip() for p in parts if p.strip() and not _is_none(p)]


def _read_broken_rules(raw_lines: list[str]) -> tuple[str, ...]:
    for i, raw in enumerate(raw_lines):
        m = _BROKEN_LABEL.match(_clean_decision_line(raw))
        if m is None:
            continue
        rest = m.group("rest").strip()
        if rest and _is_none(rest):
            return ()
        rules = _inline_rules(rest) if rest else []
        for follow in raw_lines[i + 1:]:
            if not follow.strip():
                continue
            ln = _split_line(follow)
            if ln.is_item:
                if not _is_none(ln.text):
                    rules.append(ln.text)
            elif rules and ln.indent > 0:
                rules[-1] = f"{rules[-1]} {ln.text}"
            else:
                break
        return tuple(rules)
    return ()


def parse_decision(text: str) -> Decision:
    """Parse a P_D answer.

    ``anomaly``: the first line labelled ``Anomaly`` (also ``**Anomaly:** Yes``,
    ``Anomaly - yes``, ``Anomaly: [No]``, ``1. Is this an anomaly scene? Yes``, ``Answer: Yes``,
    or the label alone with Yes/No on the next non-blank line) whose value starts with Yes/No
    (case-insensitive; an echoed ``Yes/No`` is skipped); else a first non-blank line starting
    with a bare Yes/No ("Answer Yes/No first"); else None.

    ``broken_rules``: after the first ``Broken Rules`` label: ``None``-like values (``None``,
    ``"None"``, ``[None]``, ``N/A``, ``None.``) give ``()``; an inline value is split into its
    quoted strings, else on ``;``, else kept as one item (commas are not split: rules contain
    them); then the list items that follow (blank lines allowed, indented continuation lines
    appended), stopping at the first non-list line (e.g. a trailing ``Note: ...``). Items are
    kept as written, explanations included.
    """
    raw_lines = text.splitlines()
    cleaned = [_clean_decision_line(line) for line in raw_lines]
    return Decision(_read_anomaly(cleaned), _read_broken_rules(raw_lines), text)
