"""``frozen``: the frozen-VLM zero-shot baseline ("Frozen Baseline" in COPRA's tables).

It follows VERA's three inference steps (``../shared/specs/PROTOCOLS.md`` §2) on the shared
LAVAD/VERA window grid (:mod:`tasks.windows`; centres every 16 frames, 10-second windows at the
dataset's fps constant, 8 frames per window drawn VERA's way by ``arange``):

1. **Window question.** For each window the VLM sees the window's frames and is asked whether
   anything abnormal happens. With log-probabilities (the ``hf`` engine gives them) the window
   score is P(yes) renormalised over the yes/no tokens at the first generated position; without
   them it is 1 for a "yes" answer and 0 for "no". P(yes) uses the exact log-probabilities of
   the yes/no spellings (``SamplingParams.target_tokens``), falling back to the top-k
   alternatives for engines that only return those. Windows whose answer cannot be read are
   interpolated linearly over the centre frames (LAVAD's rule for unparsed scores).
2. **Retrieval refinement** over window features of the same video (the VLM's own vision
   tower, mean-pooled, or pixel thumbnails with ``retrieval_features="pixels"``), see
   :func:`methods.refine.retrieval_refine`.
3. **Smoothing and position weighting**: Gaussian smoothing over windows, optionally rounded
   (``round_decimals=1`` is VERA's Step 3b, used by its AUC scripts; off by default),
   repeat-and-truncate to frames, then the mid-video Gaussian weighting, see
   :mod:`methods.refine`.

VERA's XD-Violence scripts differ per metric (AUC: ``retrieval_all_below=10``; AP: cut-off 4,
no position weighting, sigmoid then rounding, frames re-aligned to a 16-frame ground truth).
The settings above cover the AUC path; the AP path's sigmoid and re-alignment are not
reproduced. The window grid (stride 16, 10-s windows at the dataset's fps) comes from the task;
this method samples ``frames_per_window`` frames per window, VERA's way (``arange``) by
default, and the run records the grid it used as its protocol.

The record keeps the frame scores after Steps 1 and 2 (``step_scores``, run-length encoded)
next to ``scores`` (Step 3), so a run reports the metrics of every step the way COPRA's tables
do.

The default prompt is written in our own words; ``prompt_file`` loads another template (a
``{question}``-free text file used verbatim as the user instruction).

On the language-side tasks (multiple choice, captions, reasoning) the frozen VLM answers each
query zero-shot with the task's frame plan and decoding (:mod:`methods.answering`);
``answer_max_new_tokens`` caps the protocol's generation length (a plumbing check on the tiny
model does not need HIVAU's 1,024 tokens) and is recorded in the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harness.engines.base import LoRARef, Message, Request, SamplingParams, VideoPart
from harness.video import Frames
from methods.answering import AdapterFn, AnswerOverrides, answer_queries
from methods.base import Method, MethodNeeds, RunContext
from methods.refine import position_weights, retrieval_refine, smooth
from tasks.answers import extract_yes_no, yes_probability
from tasks.base import VideoSample
from tasks.records import encode_rle
from tasks.windows import WindowGrid, WindowSpec, make_grid

SYSTEM_PROMPT = "You review footage from fixed surveillance cameras."
USER_PROMPT = (
    "These frames come from a short clip of a surveillance camera. Is anything abnormal "
    "happening in it, such as a fight, an assault, an accident, a fire or explosion, a theft, "
    "someone falling, or people or vehicles behaving dangerously? Reply with a single word: "
    "Yes or No."
)

# Spellings of the answer whose first-token log-probabilities give P(yes).
ANSWER_TOKENS = ("Yes", "No", "yes", "no", " Yes", " No", " yes", " no", "YES", "NO")


@dataclass
class FrozenSettings:
    """Settings of the frozen baseline (defaults: VERA's protocol)."""

    frames_per_window: int = 8
    sampler: str = "arange"
    max_pixels: int | None = None
    prompt_file: str | None = None
    max_new_tokens: int = 4
    use_logprobs: bool = True
    top_logprobs: int = 20
    retrieval_features: str = "vlm"
    retrieval_top_frac: float = 0.15
    retrieval_all_below: int = 0
    retrieval_temperature: float = 10.0
    smooth_size: int = 15
    smooth_sigma: float = 10.0
    round_decimals: int | None = None
    position_weighting: bool = True
    answer_max_new_tokens: int | None = None


DEFAULT_MAX_PIXELS = 448 * 448  # VERA feeds 448x448 tiles


class WindowAdapters(Protocol):
    """Per-window LoRA adapters for one video (COPRA's hook into the three steps; the frozen
    baseline has none)."""

    def extra_indices(self) -> np.ndarray:
        """0-based frames to decode besides the windows' own (conditioning frames)."""
        ...

    def refs(self, windows: Sequence[int], frames: Frames, clips: Sequence[np.ndarray]
             ) -> list[LoRARef | None]:
        """The adapter of each window in ``windows`` (indices into the grid); ``frames`` holds
        every decoded frame, ``clips`` the windows' own frames."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the record keeps about the adaptation."""
        ...


def interpolate_missing(centres: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Fill NaN window scores by linear interpolation over centre frames (LAVAD's rule);
    all-NaN gives zeros."""
    s = np.asarray(scores, dtype=np.float64).copy()
    ok = ~np.isnan(s)
    if ok.all():
        return s
    if not ok.any():
        return np.zeros_like(s)
    s[~ok] = np.interp(centres[~ok], centres[ok], s[ok])
    return s


def pixel_features(clips: list[np.ndarray], side: int = 16) -> np.ndarray:
    """Thumbnail features: each clip ``(T, H, W, 3)`` -> grey ``side x side`` per frame,
    concatenated, centred and L2-normalised -> ``(B, T * side * side)``."""
    feats = []
    for clip in clips:
        grey = clip.astype(np.float32).mean(axis=3)
        t, h, w = grey.shape
        ys = np.linspace(0, h - 1, side).astype(int)
        xs = np.linspace(0, w - 1, side).astype(int)
        f = grey[:, ys][:, :, xs].reshape(-1)
        f = f - f.mean()
        feats.append(f / (np.linalg.norm(f) + 1e-8))
    width = max(len(f) for f in feats)
    out = np.zeros((len(feats), width), np.float32)
    for i, f in enumerate(feats):
        out[i, : len(f)] = f
    return out


class FrozenBaseline(Method):
    name = "frozen"
    description = "Frozen VLM, zero-shot, VERA's three steps (COPRA's 'Frozen Baseline')"
    task_kinds = frozenset({"frame", "mcq", "caption", "reasoning"})
    needs = MethodNeeds(engine=True)
    Settings = FrozenSettings

    def __init__(self, engine: Any = None, **settings: Any) -> None:
        super().__init__(engine, **settings)
        cfg: FrozenSettings = self.settings
        if cfg.sampler not in ("arange", "linspace"):
            raise ValueError(f"frozen: sampler must be 'arange' or 'linspace', not {cfg.sampler!r}")
        if cfg.retrieval_features not in ("vlm", "pixels"):
            raise ValueError("frozen: retrieval_features must be 'vlm' or 'pixels'")
        self.user_prompt = (
            Path(cfg.prompt_file).read_text(encoding="utf-8").strip()
            if cfg.prompt_file else USER_PROMPT
        )

    def deterministic(self, sample: VideoSample) -> bool:
        """Frame tasks decode greedily; a language task's queries may ask for sampling
        (Vad-Reasoning's temperature 0.1)."""
        return all(q.temperature <= 0 for q in sample.queries)

    def window_spec(self, task_spec: WindowSpec) -> WindowSpec:
        """The task's grid (stride, 10-s windows) with this method's frames per window."""
        cfg: FrozenSettings = self.settings
        return replace(task_spec, frames_per_window=cfg.frames_per_window,
                       sampler=cfg.sampler)  # type: ignore[arg-type]

    def _requests(self, clips: list[np.ndarray], fps: float, logprobs: bool,
                  window_seconds: float) -> list[Request]:
        cfg: FrozenSettings = self.settings
        sampling = SamplingParams(
            max_new_tokens=cfg.max_new_tokens, temperature=0.0,
            logprobs=cfg.top_logprobs if logprobs else None,
            target_tokens=ANSWER_TOKENS if logprobs else (),
        )
        step = max(1.0, window_seconds * fps / cfg.frames_per_window)
        return [
            Request(
                messages=(Message.system(SYSTEM_PROMPT),
                          Message.user(VideoPart(clip, fps=fps / step), self.user_prompt)),
                sampling=sampling,
                request_id=str(i),
            )
            for i, clip in enumerate(clips)
        ]

    def window_adapters(self, sample: VideoSample, ctx: RunContext, grid: WindowGrid,
                        budget: int) -> WindowAdapters | None:
        """Adapters for the video's windows; the frozen baseline has none."""
        return None

    def query_adapter(self, sample: VideoSample, ctx: RunContext) -> AdapterFn | None:
        """The adapter of a language-side sample's queries; the frozen baseline has none."""
        return None

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        cfg: FrozenSettings = self.settings
        engine = self.engine
        assert engine is not None
        if sample.queries:  # a language-side task: answer its questions
            return answer_queries(engine, sample, ctx,
                                  overrides=AnswerOverrides(
                                      cap_new_tokens=cfg.answer_max_new_tokens),
                                  max_pixels=cfg.max_pixels,
                                  adapter=self.query_adapter(sample, ctx))
        spec = self.window_spec(ctx.window)
        grid = make_grid(sample.num_frames, sample.fps, spec)
        budget = cfg.max_pixels or ctx.max_pixels or DEFAULT_MAX_PIXELS
        adapters = self.window_adapters(sample, ctx, grid, budget)
        wanted = grid.all_indices()
        if adapters is not None:
            wanted = np.union1d(wanted, adapters.extra_indices())
        frames = ctx.read(sample, wanted, max_pixels=budget)
        clips = [frames.take(ix) for ix in grid.indices]
        logprobs = cfg.use_logprobs and engine.capabilities.logprobs

        step1 = np.full(len(grid), np.nan)
        answers: list[str] = []
        requests = self._requests(clips, sample.fps, logprobs, spec.window_seconds)
        for lo in range(0, len(requests), ctx.batch_size):
            batch = requests[lo:lo + ctx.batch_size]
            if adapters is not None:
                refs = adapters.refs(range(lo, lo + len(batch)), frames, clips)
                batch = [replace(r, lora=ref) for r, ref in zip(batch, refs, strict=True)]
            for j, resp in enumerate(engine.generate(batch)):
                comp = resp.completions[0]
                answers.append(comp.text)
                p = None
                if comp.target_logprobs:  # exact P(yes) over the yes/no tokens
                    p = yes_probability(comp.target_logprobs[0])
                if p is None and comp.top_logprobs:  # engines without target tokens: top-k
                    p = yes_probability(comp.top_logprobs[0])
                if p is None:
                    yn = extract_yes_no(comp.text)
                    p = None if yn is None else float(yn)
                if p is not None:
                    step1[lo + j] = p
        unparsed = int(np.isnan(step1).sum())
        step1 = interpolate_missing(grid.centres, step1)

        use_vlm = cfg.retrieval_features == "vlm" and engine.capabilities.embeddings
        if use_vlm:
            feats = np.concatenate([
                engine.embed_frames(clips[lo:lo + ctx.batch_size])
                for lo in range(0, len(clips), ctx.batch_size)
            ])
        else:
            feats = pixel_features(clips)
        step2 = retrieval_refine(step1, feats, cfg.retrieval_top_frac, cfg.retrieval_temperature,
                                 cfg.retrieval_all_below)
        step3w = smooth(step2, cfg.smooth_size, cfg.smooth_sigma)
        if cfg.round_decimals is not None:
            step3w = np.round(step3w, cfg.round_decimals)
        step3 = grid.to_frames(step3w)
        if cfg.position_weighting:
            step3 = step3 * position_weights(sample.num_frames)
        return {
            "video_id": sample.video_id,
            "num_frames": sample.num_frames,
            "scores": step3.tolist(),
            "step_scores": {
                "step1": encode_rle(grid.to_frames(step1)),
                "step2": encode_rle(grid.to_frames(step2)),
            },
            "windows": {
                "centres": grid.centres.tolist(),
                "step1": step1.tolist(),
                "answers": answers,
                "unparsed": unparsed,
                "retrieval_features": "vlm" if use_vlm else "pixels",
            },
            "frames_clamped": frames.clamped,
            **({"adaptation": adapters.describe()} if adapters is not None else {}),
        }
