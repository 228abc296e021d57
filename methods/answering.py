"""Asking a sample's questions: the shared answering routine of the language-side tasks.

Every method that answers text queries with a VLM goes through :func:`answer_queries`: it
samples the frames of the task's frame plan once per sample (one decode), asks every query of
the sample with those frames (one request per query, batched), and returns the prediction
record ``{"video_id", "responses": {query id: text}, "frames": ..., "decoding": ...}`` that
:class:`tasks.text_task.TextTask` scores. Raw text is kept; extraction is the task's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from harness.engines.base import Engine, LoRARef, Message, Request, SamplingParams, VideoPart
from methods.base import RunContext
from tasks.base import Query, VideoSample
from tasks.text_task import FramePlan


@dataclass(frozen=True)
class AnswerOverrides:
    """A method's deviations from the protocol's decoding (None = the query's own);
    ``cap_new_tokens`` bounds each query's own ``max_new_tokens``."""

    max_new_tokens: int | None = None
    cap_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    system: str | None = None


def sampled_fps(indices: np.ndarray, fps: float) -> float:
    """Rate of the sampled frames (frames per second of video time); 1.0 when unknown."""
    if fps <= 0 or len(indices) < 2:
        return 1.0
    seconds = (int(indices[-1]) - int(indices[0]) + 1) / fps
    return len(indices) / seconds if seconds > 0 else 1.0


def build_request(query: Query, frames: np.ndarray, indices: np.ndarray, fps: float,
                  overrides: AnswerOverrides, seed: int, request_id: str) -> Request:
    """One chat request: system prompt (if any), then the frames as a video and the prompt."""
    o = overrides
    max_new = o.max_new_tokens or query.max_new_tokens
    if o.cap_new_tokens:
        max_new = min(max_new, o.cap_new_tokens)
    sampling = SamplingParams(
        max_new_tokens=max_new,
        temperature=query.temperature if o.temperature is None else o.temperature,
        top_p=query.top_p if o.top_p is None else o.top_p,
        seed=seed,
    )
    system = query.system if o.system is None else o.system
    video = VideoPart(frames, fps=sampled_fps(indices, fps),
                      frame_indices=tuple(int(i) for i in indices))
    msgs: tuple[Message, ...] = (Message.user(video, query.prompt),)
    if system:
        msgs = (Message.system(system), *msgs)
    return Request(messages=msgs, sampling=sampling, request_id=request_id)


#: Builds the adapter a sample's requests run with from its sampled ``(frames, indices)``.
AdapterFn = Callable[[np.ndarray, np.ndarray], LoRARef | None]


def answer_queries(engine: Engine, sample: VideoSample, ctx: RunContext,
                   plan: FramePlan | None = None, overrides: AnswerOverrides | None = None,
                   max_pixels: int | None = None, adapter: AdapterFn | None = None,
                   ) -> dict[str, Any]:
    """Answer all of ``sample``'s queries with one frame sample (see the module docstring).

    ``plan`` defaults to the task's (``ctx.frame_plan``); ``max_pixels`` overrides the plan's
    budget, which overrides the run's. ``adapter`` (COPRA) is called once with the sampled
    frames ``(T, H, W, 3)`` and their indices ``(T,)``; its LoRA applies to every query.
    """
    plan = plan or ctx.frame_plan or FramePlan()
    overrides = overrides or AnswerOverrides()
    budget = max_pixels or plan.max_pixels or ctx.max_pixels
    indices, frames = ctx.sample_frames(sample, plan.frames, plan.sampler, budget)
    fps = sample.fps if sample.fps > 0 else 0.0
    requests = [build_request(q, frames, indices, fps, overrides, ctx.seed + i,
                              f"{sample.video_id}#{q.qid}")
                for i, q in enumerate(sample.queries)]
    lora = adapter(frames, indices) if adapter is not None else None
    if lora is not None:
        requests = [replace(r, lora=lora) for r in requests]
    responses: dict[str, str] = {}
    finish: dict[str, str] = {}
    for lo in range(0, len(requests), ctx.batch_size):
        batch = requests[lo:lo + ctx.batch_size]
        for q, resp in zip(sample.queries[lo:lo + ctx.batch_size], engine.generate(batch),
                           strict=True):
            responses[q.qid] = resp.completions[0].text
            finish[q.qid] = resp.completions[0].finish_reason
    return {
        "video_id": sample.video_id,
        "responses": responses,
        "finish_reasons": finish,
        "frames": {"indices": indices.tolist(), "sampler": plan.sampler,
                   "max_pixels": budget, "shape": list(frames.shape[1:3])},
        "decoding": {q.qid: {"max_new_tokens": r.sampling.max_new_tokens,
                             "temperature": r.sampling.temperature, "top_p": r.sampling.top_p}
                     for q, r in zip(sample.queries, requests, strict=True)},
    }
