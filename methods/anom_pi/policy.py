"""Anom-π's trainable policy: the shared :class:`methods.rl.policy.VLMPolicy` with Anom-π's
checkpoint metadata (``anom_pi.json``: format, mode, backbone, the environment, prompts and
decoding it was trained with, the training summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.rl.policy import VLMPolicy, read_policy_meta

FORMAT = "vad-eval/anom-pi-checkpoint-v1"
META_FILE = "anom_pi.json"


class AnomPiPolicy(VLMPolicy):
    """The policy trained by iDPO."""

    format = FORMAT
    meta_file = META_FILE
    label = "anom-pi"


def read_meta(path: str | Path) -> dict[str, Any]:
    """An Anom-π checkpoint's ``anom_pi.json``, checked (errors name the file and field)."""
    return read_policy_meta(path, FORMAT, META_FILE, "Anom-π")
