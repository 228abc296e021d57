"""HyCoVAD's four prompts (seed paper, Appendix C), as templates with explicit placeholders.

The default texts are the Appendix C prompts exactly as printed, including the paper's
typographic apostrophes (``’``) and quotes; only the bracketed slots are replaced by
placeholders:

* ``I_G`` (C.1, caption instruction to the VLM): no slot.
* ``P_R`` (C.2, rule generation): ``[frame description C_t]`` -> ``{caption}``.
* ``P_A`` (C.2, rule aggregation): ``[all generated rules for this video]`` -> ``{rule_sets}``;
  its output-format block (``=== RULES FOR ... ===`` with ``- [normal rule 1]`` ...) is part of
  the prompt and kept verbatim.
* ``P_D`` (C.3, decision): ``[frame’s refined caption Ĉ_t]`` -> ``{caption}`` and
  ``[video’s aggregated rules R_A]`` -> ``{rules}``.

Placeholders are filled by one literal, single-pass substitution (no ``str.format``), so
braces elsewhere in a template or inside a caption are left alone and a caption that happens to
contain ``{rules}`` is not expanded again.

Templates can be overridden from a directory (:func:`load_prompts`): ``caption.txt``,
``rules.txt``, ``aggregate.txt``, ``decision.txt``, any subset; trailing newlines of a file are
dropped. A loaded template must contain its placeholders (``rules.txt``: ``{caption}``;
``aggregate.txt``: ``{rule_sets}``; ``decision.txt``: ``{caption}`` and ``{rules}``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

#: C.1, the VLM's caption instruction I_G.
CAPTION_INSTRUCTION = (
    "You are an AI visual assistant that can analyze a video frame. Describe the frame with "
    "focus on people’s activities, objects and their relation. Don’t mention background."
)

#: C.2, rule generation P_R; ``{caption}`` is the frame description C_t.
RULE_PROMPT = """\
You are an expert in analyzing scenes and generating rules for normal and anomaly detection. \
Now given the following frame description:
{caption}

Generate a set of rules that define:
1. What constitutes a normal activity or object in this context.
2. What constitutes an anomaly activity or object in this context.

The only anomalies that matter are interactions of two or more objects/actors. Be strict, \
there should not be anything odd or out of ordinary in the street or on the sidewalk of the \
campus. Adhere to these notes. Rules should be clear, concise, and specific to the context of \
the frame description and the needed anomalies we said. Don’t miss any interacted objects."""

#: C.2, rule aggregation P_A; ``{rule_sets}`` is all rule sets generated for the video.
AGGREGATE_PROMPT = """\
You are an expert at organizing rules for video anomaly detection. Below are multiple \
independent rule sets for the same video. Combine them into one final set of rules with:
1. Clear separation between normal and anomaly rules
2. No duplicate rules
3. All unique anomaly cases preserved
4. Contradictory rules resolved by considering the worst case (apply stricter rules)
5. Consistent formatting, with no markdown annotations, no extra talks

Rules to aggregate:
{rule_sets}

Provide the consolidated rules in this exact format. Don’t output anything more than the \
given format:

=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===
- [normal rule 1]
- [normal rule 2]
...

=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ===
- [anomaly rule 1]
- [anomaly rule 2]
..."""

#: C.3, decision P_D; ``{caption}`` is the refined caption, ``{rules}`` the video's rules R_A.
#: The paper's template reads "Below is t scene description" while its completed example
#: (P̂_D) reads "Below is a scene description"; the completed example's wording is used.
DECISION_PROMPT = """\
You are an expert in anomaly detection in video frames. You should be very strict and don’t \
let any anomalies or broken rules unattended. Use scene description and rules provided. Below \
is a scene description and the video’s rules:

Scene Description:
{caption}

Rules for Normal/Anomaly Scenes:
{rules}

Analyze this scene and determine:
1. Is this an anomaly scene? (Answer Yes/No first)
2. If anomaly, which rules are broken?

Format your response like this:
Anomaly: Yes/No
Broken Rules: [list broken rules or "None"]"""

#: How the per-frame rule sets are joined in P_A's ``{rule_sets}`` slot: each set (stripped)
#: under a ``Rule set k:`` line (k from 1), sets separated by one blank line. The paper only
#: says the rule sets are "concatenated"; the labels keep independent sets apart, since each
#: P_R answer carries its own "1. ... 2. ..." numbering.
RULE_SET_LABEL = "Rule set {k}:"

#: Override file name -> (field of :class:`Prompts`, placeholders the template must contain).
TEMPLATE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "caption.txt": ("caption", ()),
    "rules.txt": ("rules", ("{caption}",)),
    "aggregate.txt": ("aggregate", ("{rule_sets}",)),
    "decision.txt": ("decision", ("{caption}", "{rules}")),
}

_PLACEHOLDER = re.compile(r"\{(caption|rule_sets|rules)\}")


def fill(template: str, **values: str) -> str:
    """Replace ``{name}`` placeholders of ``template`` by ``values[name]`` in a single pass.

    Only placeholders named in ``values`` are replaced; any other text (braces included) stays
    as is, and substituted text is never scanned again.
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return _PLACEHOLDER.sub(sub, template)


def join_rule_sets(rule_sets: Sequence[str]) -> str:
    """Join per-frame rule-set texts for P_A's slot (see :data:`RULE_SET_LABEL`)."""
    blocks = [
        f"{RULE_SET_LABEL.format(k=k)}\n{text.strip()}" for k, text in enumerate(rule_sets, 1)
    ]
    return "\n\n".join(blocks)


@dataclass(frozen=True)
class Prompts:
    """The four templates: ``caption`` (I_G), ``rules`` (P_R), ``aggregate`` (P_A),
    ``decision`` (P_D), with placeholders as described in the module docstring."""

    caption: str = CAPTION_INSTRUCTION
    rules: str = RULE_PROMPT
    aggregate: str = AGGREGATE_PROMPT
    decision: str = DECISION_PROMPT

    def format_rule_prompt(self, caption: str) -> str:
        """P_R for one frame caption C_t."""
        return fill(self.rules, caption=caption.strip())

    def format_aggregate_prompt(self, rule_sets: Sequence[str]) -> str:
        """P_A over all rule-set texts of a video (joined by :func:`join_rule_sets`)."""
        return fill(self.aggregate, rule_sets=join_rule_sets(rule_sets))

    def format_decision_prompt(self, caption: str, rules_text: str) -> str:
        """P_D for one refined caption and the video's rules text (e.g. ``RuleSet.render()``)."""
        return fill(self.decision, caption=caption.strip(), rules=rules_text.strip())


DEFAULT_PROMPTS = Prompts()


def format_rule_prompt(caption: str, prompts: Prompts | None = None) -> str:
    """P_R with the default (or given) templates."""
    return (prompts or DEFAULT_PROMPTS).format_rule_prompt(caption)


def format_aggregate_prompt(rule_sets: list[str], prompts: Prompts | None = None) -> str:
    """P_A with the default (or given) templates; see :data:`RULE_SET_LABEL` for the joining."""
    return (prompts or DEFAULT_PROMPTS).format_aggregate_prompt(rule_sets)


def format_decision_prompt(caption: str, rules_text: str, prompts: Prompts | None = None) -> str:
    """P_D with the default (or given) templates."""
    return (prompts or DEFAULT_PROMPTS).format_decision_prompt(caption, rules_text)


def _read_template(path: Path, required: tuple[str, ...]) -> str:
    """A template file's text (UTF-8, trailing newlines dropped), checked for placeholders."""
    text = path.read_text(encoding="utf-8").rstrip("\r\n")
    if not text.strip():
        raise ValueError(f"prompt template {path} is empty")
    missing = [p for p in required if p not in text]
    if missing:
        raise ValueError(f"prompt template {path} lacks placeholder(s) {', '.join(missing)}")
    return text


def load_prompts(
    directory: str | Path | None, decision_file: str | Path | None = None
) -> Prompts:
    """Default prompts, with the templates found in ``directory`` overriding them.

    ``None`` -> the defaults. Otherwise ``directory`` must exist; each of ``caption.txt``,
    ``rules.txt``, ``aggregate.txt``, ``decision.txt`` present in it (UTF-8) replaces the
    matching template (trailing newlines dropped); other files are ignored. ``decision_file``
    (optional) is one more decision template, applied last (it wins over ``decision.txt``).
    Raises ``FileNotFoundError`` for a missing directory or decision file, and ``ValueError``
    naming the file when a template lacks one of its placeholders or is empty.
    """
    overrides: dict[str, str] = {}
    if directory is not None:
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"prompt directory not found: {root}")
        for filename, (field_name, required) in TEMPLATE_FILES.items():
            if (root / filename).is_file():
                overrides[field_name] = _read_template(root / filename, required)
    if decision_file is not None:
        path = Path(decision_file)
        if not path.is_file():
            raise FileNotFoundError(f"decision prompt file not found: {path}")
        overrides["decision"] = _read_template(path, TEMPLATE_FILES["decision.txt"][1])
    return replace(DEFAULT_PROMPTS, **overrides)
