"""Anom-π's video-reviewing environment: a temporal window over a video, the frames seen so far,
and a budget; the temporal atomic operators move the window and choose the frames shown next.

Conventions: frames are 0-based indices of the sample's video, windows are ``[start, stop)``
(``stop`` exclusive) inside ``[0, num_frames)``; a sample that covers a span ``(a, b)`` of a
longer file is reviewed in its own coordinates and decoded at ``a + i``. Every view shows
``frames_per_view`` moments at the *centres* of that many equal parts of the window
(:func:`tasks.windows.sample_window` with ``"mid"``), so halving the window interleaves new
moments between the ones already seen (fine-grained sampling doubles the temporal density).
Each moment is a snippet of ``snippet`` frames ``snippet_stride`` apart (default 1: a still),
so that a model whose video patches span consecutive frames (Qwen2-VL's temporal patch of 2)
sees motion.

Operators (window ``[s, e)`` of width ``w = e - s`` in a video of ``N`` frames):

* ``zoom j`` (fine-grained sampling) -> the ``j``-th (0-based) of ``zoom_segments`` equal parts
  of ``[s, e)``; legal while that part is at least ``frames_per_view`` frames wide.
* ``expand`` (temporal expansion) -> width ``min(N, round(expand_factor * w))`` around the same
  centre, shifted to stay inside ``[0, N)``; legal while ``w < N``.
* ``backtrack`` (local backtracking) -> the window shifted back by ``round(backtrack_shift * w)``
  frames (at least 1), clipped at 0 keeping its width; legal while ``s > 0``. With the default
  shift 0.5 it overlaps the first half of the current window: re-watching the lead-up.

The first view (turn 0) shows the whole video. ``think`` and ``answer`` leave the window alone.
An operator is legal only if its view would not take the frames decoded past ``max_frames``;
when one turn is left (``max_turns``) only the answers are legal, so every rollout ends with a
judgement (``forced`` when the budget imposed it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.windows import sample_window

OPERATORS = ("zoom", "expand", "backtrack")


@dataclass(frozen=True)
class EnvConfig:
    """Observation and budget settings (defaults: the tiny preset's and ours; README)."""

    frames_per_view: int = 4
    max_frames: int = 24
    snippet: int = 1
    snippet_stride: int = 2
    max_turns: int = 6
    zoom_segments: int = 2
    expand_factor: float = 2.0
    backtrack_shift: float = 0.5

    def view(self, window: Window, num_frames: int) -> np.ndarray:
        """The frames a view of ``window`` shows (:func:`view_indices` with this config)."""
        return view_indices(window, self.frames_per_view, self.snippet, self.snippet_stride,
                            num_frames)

    def __post_init__(self) -> None:
        if self.frames_per_view < 1 or self.zoom_segments < 2:
            raise ValueError("frames_per_view must be >= 1 and zoom_segments >= 2")
        if self.snippet < 1 or self.snippet_stride < 1:
            raise ValueError("snippet and snippet_stride must be >= 1")
        if self.max_frames < self.frames_per_view * self.snippet:
            raise ValueError(f"max_frames ({self.max_frames}) must allow the first view "
                             f"({self.frames_per_view} x {self.snippet} frames)")
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")
        if self.expand_factor <= 1 or not 0 < self.backtrack_shift <= 1:
            raise ValueError("expand_factor must be > 1 and backtrack_shift in (0, 1]")


@dataclass(frozen=True)
class Window:
    """``[start, stop)`` frames, 0-based, ``stop`` exclusive."""

    start: int
    stop: int

    @property
    def width(self) -> int:
        return self.stop - self.start

    def as_list(self) -> list[int]:
        return [self.start, self.stop]


def zoom(window: Window, segment: int, segments: int) -> Window:
    """The ``segment``-th (0-based) of ``segments`` equal parts of ``window`` (boundaries
    rounded down)."""
    if not 0 <= segment < segments:
        raise ValueError(f"zoom segment {segment} outside 0..{segments - 1}")
    w = window.width
    lo = window.start + (segment * w) // segments
    hi = window.start + ((segment + 1) * w) // segments
    return Window(lo, hi)


def expand(window: Window, num_frames: int, factor: float) -> Window:
    """``window`` widened ``factor`` times around its centre, inside ``[0, num_frames)``."""
    width = min(num_frames, max(window.width + 1, int(round(factor * window.width))))
    centre = (window.start + window.stop) / 2
    start = int(round(centre - width / 2))
    start = min(max(start, 0), num_frames - width)
    return Window(start, start + width)


def backtrack(window: Window, shift: float) -> Window:
    """``window`` moved back by ``max(1, round(shift * width))`` frames, clipped at 0."""
    step = max(1, int(round(shift * window.width)))
    start = max(0, window.start - step)
    return Window(start, start + window.width)


def view_indices(window: Window, frames_per_view: int, snippet: int = 1, stride: int = 2,
                 num_frames: int | None = None) -> np.ndarray:
    """The frames a view of ``window`` shows: ``k`` moments at the centres of ``k`` equal parts
    of the window (all of its frames when it is narrower than ``k``), each as a snippet of
    ``snippet`` frames ``stride`` apart starting at the moment (clipped to the video's last
    frame ``num_frames - 1``, default the window's) -> ``(k * snippet,)`` int64, moment-major.
    """
    moments = sample_window(window.start, window.stop, frames_per_view, "mid")
    if snippet == 1:
        return moments
    last = (num_frames if num_frames is not None else window.stop) - 1
    offsets = np.arange(snippet, dtype=np.int64) * stride
    return np.minimum(moments[:, None] + offsets[None, :], last).reshape(-1)


@dataclass
class ReviewState:
    """One video under review. ``seen`` lists the decoded frames in first-seen order;
    ``views`` the ``(window, indices)`` of every view shown (turn 0's included)."""

    video_id: str
    num_frames: int
    window: Window
    seen: list[int] = field(default_factory=list)
    views: list[tuple[Window, np.ndarray]] = field(default_factory=list)
    turns: int = 0
    done: bool = False

    @property
    def frames_decoded(self) -> int:
        return len(self.seen)

    def new_frames(self, indices: np.ndarray) -> list[int]:
        """The frames of ``indices`` not decoded yet, in order, without repeats."""
        have = set(self.seen)
        out: list[int] = []
        for i in indices.tolist():
            if i not in have:
                have.add(i)
                out.append(int(i))
        return out

    def show(self, window: Window, indices: np.ndarray) -> list[int]:
        """Record a view; returns the frames it newly decodes."""
        fresh = self.new_frames(indices)
        self.seen.extend(fresh)
        self.window = window
        self.views.append((window, indices))
        return fresh


def start_state(video_id: str, num_frames: int, cfg: EnvConfig) -> tuple[ReviewState, np.ndarray]:
    """A fresh state and the indices of its first view (the whole video)."""
    if num_frames < 1:
        raise ValueError(f"video {video_id!r} has no frames")
    whole = Window(0, num_frames)
    return ReviewState(video_id, num_frames, whole), cfg.view(whole, num_frames)


def operator_window(state: ReviewState, op: str, arg: int | None, cfg: EnvConfig
                    ) -> Window | None:
    """The window operator ``op`` (``arg``: zoom segment) leads to, or None when it is not
    applicable to the current window (module docstring)."""
    w = state.window
    if op == "zoom":
        part = zoom(w, int(arg or 0), cfg.zoom_segments)
        return part if part.width >= cfg.frames_per_view and part.width < w.width else None
    if op == "expand":
        return expand(w, state.num_frames, cfg.expand_factor) if w.width < state.num_frames \
            else None
    if op == "backtrack":
        return backtrack(w, cfg.backtrack_shift) if w.start > 0 else None
    raise ValueError(f"unknown operator {op!r}; known: {OPERATORS}")


def affordable(state: ReviewState, window: Window, cfg: EnvConfig) -> bool:
    """Whether viewing ``window`` keeps the decoded frames within ``max_frames``."""
    fresh = state.new_frames(cfg.view(window, state.num_frames))
    return state.frames_decoded + len(fresh) <= cfg.max_frames
