"""Turn one chat :class:`~harness.engines.base.Request` into model inputs (token ids + pixels).

Every prompt is the chat template's rendering (``add_generation_prompt``), tokenised without
adding special tokens (the template writes BOS and the like itself). Text-only models (family
``text``) stop there; a request with an image or video part is an
:class:`~harness.engines.base.EngineError` naming the model. For vision-language models the
template renders one placeholder per visual (Qwen: ``<|image_pad|>`` / ``<|video_pad|>`` inside
``<|vision_start|>...<|vision_end|>``; InternVL: ``<image>`` / ``<video>``), which is then
expanded to as many tokens as the vision tower produces for it, the way the transformers
processors do it:

* Qwen2-VL / Qwen2.5-VL: :mod:`harness.engines.preprocess` (no torchvision), one pad token per
  merged 2x2 patch group; ``mm_token_type_ids`` marks text 0 / image 1 / video 2 (the M-RoPE
  position computation needs it). Qwen2.5-VL videos get ``second_per_grid_ts =
  temporal_patch_size / fps``.
* InternVL: transformers' PIL ``GotOcr2ImageProcessorPil``; an image becomes
  ``<img>`` + ``<IMG_CONTEXT>`` x ``image_seq_length`` x tiles + ``</img>``; a video becomes one
  untiled image per frame, ``Frame{i}: <img>...</img>`` joined by newlines (as
  ``InternVLProcessor`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.engines.base import EngineError, ImagePart, Message, Request, TextPart, VideoPart
from harness.engines.preprocess import QwenVisionSpec, VisualInput, qwen_image, qwen_video


@dataclass
class EncodedPrompt:
    """Model inputs for one prompt (no batch dimension).

    ``input_ids``/``mm_token_type_ids``: ``L`` ints. Qwen: ``image_pixels``/``video_pixels`` are
    ``float32 (patches, 1176)`` per visual with ``image_grids``/``video_grids`` ``(t, h, w)``;
    InternVL: ``image_pixels`` holds ``float32 (tiles, 3, S, S)`` per image/frame group in
    prompt order and the grids are empty. Text models: types all 0, no pixels.
    """

    input_ids: list[int]
    mm_token_type_ids: list[int]
    image_pixels: list[np.ndarray] = field(default_factory=list)
    image_grids: list[tuple[int, int, int]] = field(default_factory=list)
    video_pixels: list[np.ndarray] = field(default_factory=list)
    video_grids: list[tuple[int, int, int]] = field(default_factory=list)
    second_per_grid_ts: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)


def to_hf_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our messages -> the ``[{"role", "content"}]`` form chat templates consume.

    Text-only messages become plain strings; others a list of ``{"type": "text"|"image"|
    "video"}`` parts in order.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if all(isinstance(p, TextPart) for p in m.content):
            out.append({"role": m.role, "content": "".join(p.text for p in m.content)})  # type: ignore[union-attr]
            continue
        parts: list[dict[str, Any]] = []
        for p in m.content:
            if isinstance(p, TextPart):
                parts.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                parts.append({"type": "image"})
            elif isinstance(p, VideoPart):
                parts.append({"type": "video"})
            else:  # pragma: no cover - ContentPart is closed
                raise EngineError(f"unsupported content part {type(p).__name__}")
        out.append({"role": m.role, "content": parts})
    return out


def _visual_parts(request: Request) -> list[ImagePart | VideoPart]:
    return [p for m in request.messages for p in m.content if isinstance(p, ImagePart | VideoPart)]


class PromptEncoder:
    """Renders and tokenises requests for one loaded model (see module docstring).

    ``model_id`` names the model in errors.
    """

    def __init__(
        self,
        family: str,
        tokenizer: Any,
        chat_template: str,
        config: Any,
        vision_spec: QwenVisionSpec | None = None,
        image_processor: Any = None,
        image_seq_length: int = 256,
        model_id: str = "",
    ) -> None:
        self.family = family
        self.model_id = model_id
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.config = config
        self.spec = vision_spec or QwenVisionSpec()
        self.image_processor = image_processor
        self.image_seq_length = image_seq_length

    def render(self, request: Request) -> str:
        """The chat-templated prompt text, with one placeholder per visual."""
        return str(
            self.tokenizer.apply_chat_template(
                to_hf_messages(request.messages),
                chat_template=self.chat_template,
                tokenize=False,
                add_generation_prompt=True,
            )
        )

    def encode(self, request: Request) -> EncodedPrompt:
        if self.family == "text":
            return self._encode_text(request)
        if self.family == "internvl":
            return self._encode_internvl(request)
        return self._encode_qwen(request)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- text-only ------------------------------------------------------------------------------
    def _encode_text(self, request: Request) -> EncodedPrompt:
        visuals = _visual_parts(request)
        if visuals:
            kinds = sorted({"image" if isinstance(p, ImagePart) else "video" for p in visuals})
            raise EngineError(
                f"model {self.model_id or '(text model)'!r} is text-only (family 'text'); the "
                f"request {request.request_id!r} has {len(visuals)} {'/'.join(kinds)} part(s). "
                "Use a vision-language model, or send text only."
            )
        ids = self._tokenize(self.render(request))
        return EncodedPrompt(ids, [0] * len(ids))

    # -- Qwen2-VL / Qwen2.5-VL ------------------------------------------------------------------
    def _encode_qwen(self, request: Request) -> EncodedPrompt:
        image_id = int(self.config.image_token_id)
        video_id = int(self.config.video_token_id)
        visuals = _visual_parts(request)
        enc = EncodedPrompt([], [])
        processed: list[tuple[int, VisualInput]] = []
        for part in visuals:
            if isinstance(part, ImagePart):
                vi = qwen_image(np.asarray(part.image), self.spec)
                enc.image_pixels.append(vi.pixel_values)
                enc.image_grids.append(vi.grid_thw)
                processed.append((image_id, vi))
            else:
                vi = qwen_video(np.asarray(part.frames), self.spec)
                enc.video_pixels.append(vi.pixel_values)
                enc.video_grids.append(vi.grid_thw)
                if part.fps <= 0:
                    raise EngineError(f"VideoPart.fps must be positive, got {part.fps}")
                enc.second_per_grid_ts.append(self.spec.temporal_patch_size / part.fps)
                processed.append((video_id, vi))
        ids = self._tokenize(self.render(request))
        placeholders = [i for i in ids if i in (image_id, video_id)]
        if placeholders != [tok for tok, _ in processed]:
            raise EngineError(
                "the chat template did not render one placeholder per image/video "
                f"(expected {len(processed)}, found {len(placeholders)})"
            )
        it = iter(processed)
        for tok in ids:
            if tok in (image_id, video_id):
                _, vi = next(it)
                enc.input_ids.extend([tok] * vi.num_tokens)
                enc.mm_token_type_ids.extend([1 if tok == image_id else 2] * vi.num_tokens)
            else:
                enc.input_ids.append(tok)
                enc.mm_token_type_ids.append(0)
        return enc

    # -- InternVL -------------------------------------------------------------------------------
    def internvl_pixels(self, images: list[np.ndarray], crop: bool) -> tuple[np.ndarray, list[int]]:
        """InternVL tiles for RGB ``uint8 (H, W, 3)`` images: ``float32 (tiles, 3, S, S)`` and
        the tile count per image (``crop``: dynamic tiling + thumbnail; else one tile each)."""
        out = self.image_processor(images=images, crop_to_patches=crop, return_tensors="np")
        pv = np.asarray(out["pixel_values"], dtype=np.float32)
        num = [int(n) for n in out.get("num_patches", [1] * len(images))]
        return pv, num

    def _encode_internvl(self, request: Request) -> EncodedPrompt:
        enc = EncodedPrompt([], [])
        tok = self.tokenizer
        start = getattr(tok, "start_image_token", None) or "<img>"
        end = getattr(tok, "end_image_token", None) or "</img>"
        ctx = getattr(tok, "context_image_token", None) or "<IMG_CONTEXT>"
        image_block = start + ctx * self.image_seq_length + end
        text = self.render(request)
        pieces: list[str] = []
        rest = text
        for part in _visual_parts(request):
            tag = "<image>" if isinstance(part, ImagePart) else "<video>"
            idx = rest.find(tag)
            if idx < 0:
                raise EngineError(f"the chat template did not render a {tag} placeholder")
            pieces.append(rest[:idx])
            rest = rest[idx + len(tag) :]
            if isinstance(part, ImagePart):
                pv, num = self.internvl_pixels([np.asarray(part.image)], crop=True)
                pieces.append(start + ctx * self.image_seq_length * num[0] + end)
            else:
                frames = [np.asarray(f) for f in part.frames]
                pv, _ = self.internvl_pixels(frames, crop=False)
                pieces.append("\n".join(f"Frame{i + 1}: {image_block}" for i in range(len(frames))))
            enc.image_pixels.append(pv)
        pieces.append(rest)
        enc.input_ids = self._tokenize("".join(pieces))
        ctx_id = int(self.config.image_token_id)
        enc.mm_token_type_ids = [1 if t == ctx_id else 0 for t in enc.input_ids]
        return enc
