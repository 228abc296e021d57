"""Prompt templates of the language-side protocols, and loading official templates from files.

The built-in prompts are written in our own words. ``load_template`` reads another template
from a text file, so that an official prompt can be used verbatim: a file with the sections
``SYSTEM_PROMPT:`` and ``USER_PROMPT:`` (in that order, each heading on its own line or followed
by the text) gives both; any other file is the user prompt as a whole, with no system prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tasks.base import TaskDataError
from tasks.formats.text import read_text


@dataclass(frozen=True)
class PromptTemplate:
    """A system prompt ("" = none) and a user prompt."""

    system: str
    user: str
    source: str = "built-in"


_SECTIONS = re.compile(r"^\s*SYSTEM_PROMPT:\s*(?P<system>.*?)^\s*USER_PROMPT:\s*(?P<user>.*)\Z",
                       re.S | re.M)


def load_template(path: str | Path) -> PromptTemplate:
    """Read a prompt template file (see the module docstring).

    Raises:
        TaskDataError: the file is missing, unreadable or empty.
    """
    p = Path(path)
    text = read_text(p, "prompt file")
    m = _SECTIONS.match(text)
    if m:
        system, user = m.group("system").strip(), m.group("user").strip()
    else:
        system, user = "", text.strip()
    if not user:
        raise TaskDataError(f"{p}: prompt file has no user prompt")
    return PromptTemplate(system, user, str(p))


# Vad-R1's Perception-to-Cognition chain of thought (P2C-CoT), in our own words. The tags and
# their order are the protocol's; the reasoning steps follow Vad-R1 §3.1.
VAD_REASONING = PromptTemplate(
    system="You are an assistant that reasons carefully about anomalies in videos.",
    user=(
        "Decide whether this video shows an abnormal event or only normal activity. Reason "
        "first, then answer, using exactly these tags.\n\n"
        "If the video is abnormal, write <think> with four steps:\n"
        "<step1> describe the scene and the ordinary activity in it, without mentioning the "
        "anomaly </step1>\n"
        "<step2> describe the abnormal event and where in the frame it happens </step2>\n"
        "<step3> explain why this event departs from what is expected here </step3>\n"
        "<step4> reason about its likely consequences and the social norms or rules it "
        "breaks </step4>\n"
        "</think>\n"
        "then <answer> as one paragraph containing <which> the type of anomaly </which>, "
        "<what> what happens </what>, <when>[start, end]</when> as fractions of the video's "
        "length between 0 and 1 (for example <when>[0.25, 0.60]</when>), <where> where in "
        "the frame </where>, <why> why it is abnormal </why> and <how> how it causes harm or "
        "breaks norms </how> </answer>.\n\n"
        "If the video is normal, write <think> with two steps: <step1> describe the scene and "
        "the activity </step1> <step2> explain why nothing in it is abnormal </step2> "
        "</think>, then <answer> as one paragraph containing <which>Normal</which>, <what> "
        "what happens </what> and <why> why it is normal </why> </answer>."
    ),
)
