"""The review settings shared by Anom-π's training and evaluation, and how a checkpoint
carries them: a checkpoint stores the environment, pixel budget, thinking switch and prompts it
was trained with (``review`` in ``anom_pi.json``) and evaluation uses them unless a setting is
given explicitly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from methods.anom_pi.env import EnvConfig
from methods.anom_pi.prompts import Prompts, load_prompts

#: Vad-R1's per-frame budget (128 x 28 x 28 pixels): the other 2B-scale VAU policy here
MAX_PIXELS = 128 * 28 * 28
#: the default review: views of 8 moments, each a snippet of 2 consecutive frames (one temporal
#: patch of Qwen2-VL: motion is visible), 48 frames (3 views) and 5 turns at most
DEFAULT_ENV = EnvConfig(frames_per_view=8, max_frames=48, max_turns=5, snippet=2,
                        snippet_stride=1)


@dataclass(frozen=True)
class ReviewConfig:
    """Everything that shapes a review: the environment, the frames' pixel budget, whether
    ``think`` is offered and how long a reasoning turn may be, and the prompts."""

    env: EnvConfig = DEFAULT_ENV
    max_pixels: int | None = MAX_PIXELS
    thinking: bool = True
    think_tokens: int = 24
    prompts: Prompts = dataclasses.field(default_factory=Prompts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any], where: str) -> ReviewConfig:
        try:
            return ReviewConfig(EnvConfig(**d["env"]), d.get("max_pixels"),
                                bool(d.get("thinking", True)), int(d.get("think_tokens", 24)),
                                Prompts(**d["prompts"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: field 'review' is malformed ({exc})") from exc


ENV_FIELDS = tuple(f.name for f in dataclasses.fields(EnvConfig))


def review_config(values: Any, base: ReviewConfig | None = None) -> ReviewConfig:
    """``base`` (default: the built-in review) with every attribute of ``values`` that names a
    review setting and is not None replaced: the environment's fields, ``max_pixels``,
    ``thinking``, ``think_tokens`` and ``prompt_file``."""
    base = base or ReviewConfig()
    env = {k: getattr(values, k) for k in ENV_FIELDS if getattr(values, k, None) is not None}
    out = dataclasses.replace(base, env=dataclasses.replace(base.env, **env))
    for k in ("max_pixels", "thinking", "think_tokens"):
        if getattr(values, k, None) is not None:
            out = dataclasses.replace(out, **{k: getattr(values, k)})
    if getattr(values, "prompt_file", None):
        out = dataclasses.replace(out, prompts=load_prompts(values.prompt_file))
    return out
