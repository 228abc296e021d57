"""What Vad-R1 shows the model: 16 frames of a video, each under 128x28x28 pixels, with the
P2C-CoT prompt (Vad-R1 Appendix C.3; the official inference samples ``linspace(0, T - 1, 16)``).

:class:`Clip` holds the sampled frames and their 0-based source indices; :meth:`Clip.keep`
gives the trimmed clip of AVA-GRPO's re-query (:mod:`methods.vad_r1.trim` chooses the indices).
Requests are built by the shared :func:`methods.answering.build_request`, so training, the
verification re-query and evaluation send the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from harness.engines.base import LoRARef, Request
from harness.video import count_frames, read_frames
from methods.answering import AnswerOverrides, build_request
from tasks.base import Query
from tasks.prompts import VAD_REASONING, PromptTemplate, load_template
from tasks.training import TrainVideo
from tasks.windows import sample_window

FRAMES = 16
MAX_PIXELS = 128 * 28 * 28


@dataclass(frozen=True)
class Clip:
    """``frames (T, H, W, 3) uint8`` sampled at ``indices (T,)`` of a ``num_frames`` video."""

    frames: np.ndarray
    indices: np.ndarray
    num_frames: int
    fps: float = 0.0

    def keep(self, indices: np.ndarray) -> Clip:
        """The clip restricted to ``indices`` (a subset of ``self.indices``, in order)."""
        pos = np.searchsorted(self.indices, indices)
        if len(indices) and (pos.max() >= len(self.indices)
                             or not np.array_equal(self.indices[pos], indices)):
            raise ValueError("keep(): indices must be a subset of the clip's")
        return replace(self, frames=self.frames[pos], indices=np.asarray(indices, np.int64))


def read_clip(video: TrainVideo, frames: int = FRAMES, max_pixels: int | None = MAX_PIXELS
              ) -> Clip:
    """``frames`` frames at ``linspace(0, T - 1, frames)`` of a training video."""
    if video.path is None:
        raise FileNotFoundError(f"training video {video.video_id!r} has no file")
    n = video.num_frames or count_frames(video.path)
    idx = sample_window(0, n, frames, "linspace")
    return Clip(read_frames(video.path, idx, max_pixels=max_pixels).take(idx), idx, n,
                video.fps)


def template(prompt_file: str | Path | None) -> PromptTemplate:
    """The P2C-CoT prompt (:data:`tasks.prompts.VAD_REASONING`), or a template file."""
    return load_template(str(prompt_file)) if prompt_file else VAD_REASONING


def reasoning_query(tpl: PromptTemplate, max_new_tokens: int = 512, temperature: float = 0.1,
                    top_p: float = 0.9) -> Query:
    """The P2C-CoT question with the official inference's decoding by default."""
    return Query("reasoning", tpl.user, answer_format="vad_r1", max_new_tokens=max_new_tokens,
                 temperature=temperature, top_p=top_p, system=tpl.system)


def clip_request(query: Query, clip: Clip, seed: int = 0, request_id: str = "",
                 lora: LoRARef | None = None) -> Request:
    req = build_request(query, clip.frames, clip.indices, clip.fps, AnswerOverrides(), seed,
                        request_id)
    return replace(req, lora=lora) if lora is not None else req
