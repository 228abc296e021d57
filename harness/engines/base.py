"""The one engine interface every back-end (``hf``, later ``vllm``, ``openai``) implements.

A method builds :class:`Request` objects (chat messages whose content mixes text, images and
videos given as decoded frames), hands a batch to :meth:`Engine.generate`, and gets one
:class:`Response` per request, in the same order, each with ``sampling.n`` completions.

Conventions
-----------
* Frames are ``uint8`` arrays of shape ``(T, H, W, 3)`` (video) or ``(H, W, 3)`` (image), RGB.
  The harness has already sampled and resized them; engines do model-specific preprocessing
  (patching, normalisation) only.
* Log-probabilities are natural logs. ``Completion.token_logprobs[i]`` is the log-probability of
  the i-th generated token; ``Completion.top_logprobs[i]`` maps the decoded text of each of the
  ``sampling.logprobs`` most likely tokens at position i to its log-probability (the chosen token
  is always included). Both are empty when ``sampling.logprobs`` is ``None``.
* ``SamplingParams.target_tokens`` asks for the exact log-probabilities of given token texts at
  every generated position, whether or not they are among the top-k
  (``Completion.target_logprobs[i]``: text -> logprob). Texts that do not encode to exactly one
  token are left out of the dict. This is how a P(yes) is read without top-k truncation.
* Greedy decoding is ``temperature == 0``.
* ``SamplingParams.allowed_tokens`` restricts decoding to the given token texts (each must
  encode to one token): the policy is the model's distribution renormalised over them, and the
  log-probabilities returned are those of that renormalised distribution. A constrained answer
  (Yes/No) is sampled this way. EOS is not allowed unless listed, so a constrained row runs
  to ``max_new_tokens``.
* ``Request.lora`` applies an adapter to that request only (engines with
  ``capabilities.lora``); requests of one batch may carry different adapters.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    """One RGB image, ``uint8`` array of shape ``(H, W, 3)``."""

    image: np.ndarray
    type: Literal["image"] = "image"


@dataclass(frozen=True)
class VideoPart:
    """Sampled video frames, ``uint8`` array ``(T, H, W, 3)``.

    ``fps`` is the rate of the *sampled* frames (what Qwen2.5-VL's temporal position ids need);
    ``frame_indices`` are the 0-based source-frame indices the frames were taken from.
    """

    frames: np.ndarray
    fps: float = 1.0
    frame_indices: tuple[int, ...] = ()
    type: Literal["video"] = "video"


ContentPart = TextPart | ImagePart | VideoPart


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: tuple[ContentPart, ...]

    @staticmethod
    def user(*parts: ContentPart | str) -> Message:
        return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))

    @staticmethod
    def system(text: str) -> Message:
        return Message("system", (TextPart(text),))


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings. ``temperature == 0`` means greedy; ``logprobs`` = top-k to return."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    logprobs: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    target_tokens: tuple[str, ...] = ()
    allowed_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoRARef:
    """A LoRA adapter to apply to this request: a PEFT directory, or in-memory tensors.

    ``name`` must be unique per distinct adapter within a run.
    """

    name: str
    path: str | None = None
    tensors: dict[str, Any] | None = None


@dataclass(frozen=True)
class Request:
    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    lora: LoRARef | None = None
    request_id: str = ""


@dataclass
class Completion:
    text: str
    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)
    target_logprobs: list[dict[str, float]] = field(default_factory=list)
    finish_reason: str = "stop"

    def copy(self) -> Completion:
        """An independent copy (greedy ``n > 1`` repeats one completion)."""
        return Completion(self.text, list(self.token_ids), list(self.token_logprobs),
                          [dict(d) for d in self.top_logprobs],
                          [dict(d) for d in self.target_logprobs], self.finish_reason)


@dataclass
class Response:
    request_id: str
    completions: list[Completion]


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can do; methods check their needs against it before any decoding."""

    logprobs: bool = False
    lora: bool = False
    video: bool = True
    images: bool = True
    embeddings: bool = False
    visual_tokens: bool = False


class EngineError(RuntimeError):
    """An engine could not serve a request (bad model path, unsupported input, ...)."""


class Engine(abc.ABC):
    """Batched generation over chat requests with frames."""

    name: str = "engine"
    capabilities: EngineCapabilities = EngineCapabilities()

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Generate for every request; returns responses in request order."""

    def embed_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised visual embedding per clip ``(T, H, W, 3)`` -> ``(B, D)`` float32.

        Only engines with ``capabilities.embeddings`` implement it.
        """
        raise EngineError(f"engine {self.name!r} does not provide visual embeddings")

    def visual_tokens(self, clips: Sequence[np.ndarray]) -> list[Any]:
        """The model's own visual tokens per clip ``(T, H, W, 3)``: one ``torch.Tensor``
        ``(G_i, S_i, D)`` per clip (``G_i`` temporal groups of ``S_i`` tokens, time-major), in
        the language model's hidden size ``D`` (after the vision tower's merger/projector), on
        the model's device. Only engines with
        ``capabilities.visual_tokens`` implement it (what COPRA's generator is conditioned on).
        """
        raise EngineError(f"engine {self.name!r} does not provide visual tokens")

    def describe(self) -> dict[str, Any]:
        """What to record in a run's config: model id/path, dtype, device, versions."""
        return {"engine": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (GPU memory, server connections)."""
