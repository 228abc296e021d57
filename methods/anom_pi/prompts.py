"""The words Anom-π's policy reads (our wording; the paper's prompts are not public).

:class:`Prompts` holds every text; :func:`load_prompts` replaces any of them from a YAML or
JSON mapping file (``prompt_file`` setting), checking that each template keeps the placeholders
it must fill and uses no others.

Placeholders: ``system`` gets ``{actions}`` (every action's letter and meaning, one per line);
``observation`` gets ``{event}`` (what the last action did), ``{frames}`` (the
0-based frame indices shown, comma-separated), ``{num_frames}``, ``{start}``, ``{stop}`` (the
window, ``stop`` exclusive), ``{seconds}`` (the window in seconds, ``"a-b s"``),
``{frames_left}``, ``{turns_left}`` and ``{menu}`` (the legal letters, ``"A, B, F"``).
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from pathlib import Path

from harness.config import read_mapping

SYSTEM = (
    "You review a surveillance video to decide whether it shows an anomalous event, such as "
    "a crime, violence, an accident or any other abnormal activity. You watch it through a "
    "temporal window: each turn you choose exactly one action from the menu by replying with "
    "its letter only. Looking at frames spends the viewing budget; answer as soon as the "
    "evidence is enough. The actions:\n{actions}")
OBSERVATION = (
    "{event}Frames {frames} of {num_frames} (window {start}-{stop}, {seconds}). Left: "
    "{frames_left} frames, {turns_left} turns. Choose one of {menu}.")
FIRST_EVENT = "The whole video at a glance. "
EVENTS = {
    "zoom": "You looked closer at part of the window. ",
    "expand": "You widened the window. ",
    "backtrack": "You went back in time. ",
    "think": "",
    "invalid": "That was not one of the letters offered. ",
}
THINK = ("Reason briefly in words about what the frames so far show and what is still "
         "uncertain. Do not choose an action yet.")
TASK_ANSWER = "Now answer this question about the video.\n{question}"

_FIELDS = {"system": {"actions"}, "observation": {"menu"}, "first_event": set(), "think": set(),
           "task_answer": {"question"}}
_ALLOWED = {"observation": {"event", "frames", "num_frames", "start", "stop", "seconds",
                            "frames_left", "turns_left", "menu"},
            "task_answer": {"question"}, "system": {"actions"}}


@dataclass(frozen=True)
class Prompts:
    """All texts (module docstring); ``source`` names where they came from."""

    system: str = SYSTEM
    observation: str = OBSERVATION
    first_event: str = FIRST_EVENT
    think: str = THINK
    task_answer: str = TASK_ANSWER
    source: str = "builtin"


def _placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def load_prompts(path: str | Path | None) -> Prompts:
    """The built-in prompts with the keys of ``path`` (YAML/JSON mapping) replaced."""
    if not path:
        return Prompts()
    data = read_mapping(str(path))
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown Anom-π prompt key(s) {unknown}; known: "
                         f"{sorted(_FIELDS)}")
    values: dict[str, str] = {}
    for key, text in data.items():
        if not isinstance(text, str):
            raise ValueError(f"{path}: field {key!r} must be a string")
        found = _placeholders(text)
        missing = _FIELDS[key] - found
        extra = found - _ALLOWED.get(key, set())
        if missing or extra:
            raise ValueError(f"{path}: field {key!r} must contain {sorted(_FIELDS[key])} and "
                             f"may use only {sorted(_ALLOWED.get(key, set()))}; "
                             f"missing {sorted(missing)}, unknown {sorted(extra)}")
        values[key] = text
    return dataclasses.replace(Prompts(), **values, source=str(path))
