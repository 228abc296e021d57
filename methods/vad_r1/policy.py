"""Vad-R1's trainable policy: the shared :class:`methods.rl.policy.VLMPolicy` with Vad-R1's
checkpoint metadata (``vad_r1.json``: format, mode, backbone, the prompt it was trained with and
the training summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.rl.policy import VLMPolicy, read_policy_meta

FORMAT = "vad-eval/vad-r1-checkpoint-v1"
META_FILE = "vad_r1.json"


class Policy(VLMPolicy):
    """The policy trained by SFT and AVA-GRPO."""

    format = FORMAT
    meta_file = META_FILE
    label = "vad-r1"


def read_meta(path: str | Path) -> dict[str, Any]:
    """A Vad-R1 checkpoint's ``vad_r1.json``, checked (errors name the file and field)."""
    return read_policy_meta(path, FORMAT, META_FILE, "Vad-R1")
