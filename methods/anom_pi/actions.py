"""Anom-π's action space: one letter per action, chosen from a menu each turn.

Fixed codes (the same in every prompt, so a letter always means one thing):

====  ===========  ==============================================================
code  kind         effect (:mod:`methods.anom_pi.env`)
====  ===========  ==============================================================
A     answer       the final judgement "anomalous" (``arg = 1``)
B     answer       the final judgement "normal" (``arg = 0``)
C     think        the next turn is free-text reasoning; no frames
D     backtrack    local backtracking
E     expand       temporal expansion
F...  zoom         fine-grained sampling of part ``arg`` (0-based) of the window
====  ===========  ==============================================================

A turn's output is parsed by :func:`parse_action`, the one extractor of this format: the first
standalone capital letter that is a legal code, else the first legal action named in words.
Engines that constrain decoding (``allowed_tokens``) only ever return a legal letter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from methods.anom_pi.env import EnvConfig, ReviewState, affordable, operator_window

ANSWER_ABNORMAL, ANSWER_NORMAL = "A", "B"
KINDS = ("answer", "think", "backtrack", "expand", "zoom")
_ORDINAL = ("first", "second", "third", "fourth", "fifth", "sixth")


@dataclass(frozen=True)
class Action:
    """One menu entry: ``code`` (a capital letter), ``kind`` (:data:`KINDS`), ``arg`` (the
    answer's label for ``answer``, the part for ``zoom``), ``text`` (its menu wording)."""

    code: str
    kind: str
    arg: int | None
    text: str

    @property
    def name(self) -> str:
        """``kind`` with its argument: ``answer:1``, ``zoom:0``, ``expand``."""
        return f"{self.kind}:{self.arg}" if self.arg is not None else self.kind


def action_table(zoom_segments: int = 2) -> tuple[Action, ...]:
    """Every action of a ``zoom_segments``-way zoom, in code order."""
    if not 2 <= zoom_segments <= len(_ORDINAL):
        raise ValueError(f"zoom_segments must be in 2..{len(_ORDINAL)}, got {zoom_segments}")
    acts = [
        Action("A", "answer", 1, "answer: an anomalous event happens in this video"),
        Action("B", "answer", 0, "answer: the video is normal"),
        Action("C", "think", None, "think: reason in words about what you have seen so far"),
        Action("D", "backtrack", None,
               "local backtracking: re-watch the moments just before the current window"),
        Action("E", "expand", None,
               "temporal expansion: widen the window to see more of the context"),
    ]
    for j in range(zoom_segments):
        part = "half" if zoom_segments == 2 else "third" if zoom_segments == 3 else "part"
        acts.append(Action(chr(ord("F") + j), "zoom", j,
                           f"fine-grained sampling: look closer at the {_ORDINAL[j]} {part} "
                           "of the window"))
    return tuple(acts)


def legal_actions(state: ReviewState, cfg: EnvConfig, table: Sequence[Action],
                  thinking: bool = True) -> list[Action]:
    """The actions allowed in ``state``: the answers always; ``think`` when ``thinking`` and
    three turns are left (choosing it, the reasoning, an answer); each operator when it applies
    to the window and its view fits the frame budget; only the answers when a single turn is
    left. Every assistant message is a turn."""
    answers = [a for a in table if a.kind == "answer"]
    if state.turns + 1 >= cfg.max_turns:
        return answers
    out = list(answers)
    for a in table:
        if a.kind == "think" and thinking and state.turns + 3 <= cfg.max_turns:
            out.append(a)  # the choice, the reasoning, then at least an answer
        elif a.kind in ("backtrack", "expand", "zoom"):
            w = operator_window(state, a.kind, a.arg, cfg)
            if w is not None and affordable(state, w, cfg):
                out.append(a)
    return sorted(out, key=lambda a: a.code)


def describe(actions: Sequence[Action]) -> str:
    """The action lines ``"A) answer: ..."``, one per action (the system prompt's list)."""
    return "\n".join(f"{a.code}) {a.text}" for a in actions)


def menu(actions: Sequence[Action]) -> str:
    """The legal letters of a turn, ``"A, B, F"`` (each turn's observation)."""
    return ", ".join(a.code for a in actions)


_WORDS = {"answer:1": ("anomal", "abnormal"), "answer:0": ("normal",),
          "think": ("think",), "backtrack": ("backtrack",), "expand": ("expand", "expansion")}


def parse_action(text: str, legal: Sequence[Action]) -> Action | None:
    """The action a turn's output chose (module docstring), or None."""
    by_code = {a.code: a for a in legal}
    for m in re.finditer(r"(?<![A-Za-z])([A-Z])(?![a-z])", text):
        if m.group(1) in by_code:
            return by_code[m.group(1)]
    low = text.lower()
    hits: list[tuple[int, Action]] = []
    for a in legal:
        for w in _WORDS.get(a.name, ()):
            pos = low.find(w)
            if a.name == "answer:0" and pos >= 2 and low[pos - 2:pos] == "ab":
                pos = low.find(w, pos + 1)
            if pos >= 0:
                hits.append((pos, a))
    return min(hits, key=lambda h: h[0])[1] if hits else None
