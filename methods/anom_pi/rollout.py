"""Multi-turn rollouts of the Anom-π policy, batched across videos (and across several rollouts
of one video) through one engine.

Every active trajectory contributes one request per round; a round is one
:meth:`~harness.engines.base.Engine.generate` call (in chunks of ``batch_size`` requests), so
many videos are reviewed at once. A request is the whole dialogue so far: the system prompt,
then alternating user messages (observations: the new view's frames as a video part and the
status and menu text) and the policy's own assistant messages (one action letter, or free-text
reasoning after ``think``).

Determinism: every request carries a seed derived from ``(decoding.seed, video id, rollout
member, turn)`` only, and the ``hf`` engine decodes each row with its own generator, so a
trajectory does not depend on which other videos share its batch; under greedy decoding
batched rollouts equal one-video-at-a-time rollouts (tested).

Action turns are constrained to the legal letters (``decoding.constrained``, engines that serve
``allowed_tokens``); otherwise a few tokens are generated and parsed by
:func:`methods.anom_pi.actions.parse_action` (an unreadable turn is spent, ``invalid``).
With ``decoding.confidence`` each action turn also asks for the log-probabilities of the two
answer letters: the turn's *confidence* is ``P(A) / (P(A) + P(B))``, the policy's probability
that the video is anomalous had it answered now (the AEI informativeness term and the frame
scores read it).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.engines.base import (
    ContentPart,
    Engine,
    LoRARef,
    Message,
    Request,
    SamplingParams,
    TextPart,
    VideoPart,
)
from harness.video import VideoError, read_frames
from methods.anom_pi.actions import (
    ANSWER_ABNORMAL,
    ANSWER_NORMAL,
    Action,
    action_table,
    describe,
    legal_actions,
    menu,
    parse_action,
)
from methods.anom_pi.env import (
    EnvConfig,
    ReviewState,
    Window,
    operator_window,
    start_state,
)
from methods.anom_pi.prompts import EVENTS, Prompts
from methods.answering import sampled_fps


@dataclass(frozen=True)
class ReviewVideo:
    """A video to review: ``num_frames`` frames from ``offset`` of ``path`` (a sample's span),
    ``fps`` its frame rate (0: unknown), ``label`` its video-level label when known (training:
    1 anomalous, 0 normal)."""

    video_id: str
    path: Path | None
    num_frames: int
    fps: float = 0.0
    offset: int = 0
    label: int | None = None
    category: str = ""


class FrameStore:
    """Decoded frames of one video at ``max_pixels``, shared by all of its rollouts (each
    rollout still counts the frames *it* asked for; the store only avoids decoding twice)."""

    def __init__(self, video: ReviewVideo, max_pixels: int | None) -> None:
        self.video, self.max_pixels = video, max_pixels
        self.cache: dict[int, np.ndarray] = {}

    def get(self, indices: np.ndarray) -> np.ndarray:
        """``(k, H, W, 3)`` uint8 frames at 0-based sample indices."""
        v = self.video
        missing = sorted({int(i) for i in indices.tolist()} - set(self.cache))
        if missing:
            if v.path is None:
                raise VideoError(None, f"sample {v.video_id!r} has no video file")
            wanted = [v.offset + i for i in missing]
            got = read_frames(v.path, wanted, max_pixels=self.max_pixels).take(wanted)
            for i, frame in zip(missing, got, strict=True):
                self.cache[i] = frame
        return np.stack([self.cache[int(i)] for i in indices.tolist()])


@dataclass(frozen=True)
class Decoding:
    """How turns are decoded. ``temperature`` 0 = greedy; ``think_tokens`` bounds a reasoning
    turn; ``action_tokens`` an unconstrained action turn; ``seed`` the base of every request's
    seed."""

    temperature: float = 0.0
    top_p: float = 1.0
    think_tokens: int = 48
    action_tokens: int = 8
    constrained: bool = True
    confidence: bool = True
    seed: int = 0


@dataclass
class Turn:
    """One assistant message: ``kind`` ``"action"`` or ``"think"``; ``request`` as sent;
    ``token_ids``/``text`` the policy's output; ``allowed`` the letters an action turn was
    constrained to (empty: free text); ``confidence`` P(anomalous) before acting (action
    turns, when log-probabilities came back); ``window``/``new_frames`` after the turn."""

    kind: str
    request: Request
    token_ids: list[int]
    text: str
    allowed: tuple[str, ...] = ()
    action: Action | None = None
    legal: tuple[str, ...] = ()
    confidence: float | None = None
    window: Window | None = None
    new_frames: int = 0


@dataclass
class Trajectory:
    """One rollout of one video (``member``: its index among the video's rollouts)."""

    video: ReviewVideo
    member: int
    state: ReviewState
    history: list[Message] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    answer: int | None = None
    p_abnormal: float | None = None
    forced: bool = False
    invalid: int = 0
    pending: list[ContentPart] = field(default_factory=list)
    event: str = ""
    next_kind: str = "action"

    @property
    def done(self) -> bool:
        return self.state.done

    def actions(self) -> list[Action]:
        return [t.action for t in self.turns if t.action is not None]

    def confidences(self) -> list[float | None]:
        """The confidence of every action turn, in order."""
        return [t.confidence for t in self.turns if t.kind == "action"]

    def summary(self) -> dict[str, Any]:
        """The JSON-able account of the rollout kept in prediction records."""
        steps: list[dict[str, Any]] = []
        for t in self.turns:
            if t.kind == "think":
                steps.append({"kind": "think", "text": t.text})
                continue
            steps.append({"kind": "action", "code": t.action.code if t.action else None,
                          "action": t.action.name if t.action else "invalid",
                          "output": t.text, "legal": list(t.legal),
                          "confidence": t.confidence,
                          "window": t.window.as_list() if t.window else None,
                          "new_frames": t.new_frames})
        return {"steps": steps, "answer": self.answer, "p_abnormal": self.p_abnormal,
                "forced": self.forced, "invalid": self.invalid, "turns": self.state.turns,
                "frames_decoded": self.state.frames_decoded,
                "window": self.state.window.as_list(),
                "views": [[w.as_list(), idx.tolist()] for w, idx in self.state.views]}


def turn_seed(base: int, video_id: str, member: int, turn: int) -> int:
    """The seed of one request: a function of the rollout's identity only."""
    return (base * 1_000_003 + zlib.crc32(f"{video_id}|{member}|{turn}".encode())) % (2 ** 31)


def _confidence(comp: Any) -> float | None:
    """``P(A) / (P(A) + P(B))`` at the first generated position, from the target (else top)
    log-probabilities; None when neither holds both letters."""
    for table in (comp.target_logprobs, comp.top_logprobs):
        if table:
            lp = table[0]
            a, b = lp.get(ANSWER_ABNORMAL), lp.get(ANSWER_NORMAL)
            if a is not None and b is not None and math.isfinite(max(a, b)):
                return 1.0 / (1.0 + math.exp(min(700.0, b - a)))
    return None


class Reviewer:
    """Runs batched rollouts (module docstring) for one engine and configuration."""

    def __init__(self, engine: Engine, env: EnvConfig, prompts: Prompts,
                 decoding: Decoding, max_pixels: int | None, thinking: bool = True,
                 batch_size: int = 8) -> None:
        self.engine, self.env, self.prompts, self.decoding = engine, env, prompts, decoding
        self.max_pixels, self.thinking, self.batch_size = max_pixels, thinking, batch_size
        self.table = action_table(env.zoom_segments)

    # -- dialogue ----------------------------------------------------------------------------
    def _messages(self, traj: Trajectory, last: Message) -> tuple[Message, ...]:
        system = self.prompts.system.format(actions=describe(self.table))
        head = (Message.system(system),) if system else ()
        return (*head, *traj.history, last)

    def _observation(self, traj: Trajectory, legal: Sequence[Action]) -> str:
        s, cfg = traj.state, self.env
        w = s.window
        idx = s.views[-1][1] if s.views else cfg.view(w, s.num_frames)
        fps = traj.video.fps
        secs = f"{w.start / fps:.1f}-{w.stop / fps:.1f} s" if fps > 0 else "time unknown"
        return self.prompts.observation.format(
            event=traj.event, frames=", ".join(str(i) for i in idx.tolist()),
            num_frames=s.num_frames, start=w.start, stop=w.stop, seconds=secs,
            frames_left=cfg.max_frames - s.frames_decoded,
            turns_left=cfg.max_turns - s.turns, menu=menu(legal))

    def _video_part(self, traj: Trajectory, store: FrameStore, idx: np.ndarray) -> VideoPart:
        v = traj.video
        return VideoPart(store.get(idx), fps=sampled_fps(idx, v.fps) if v.fps > 0 else 1.0,
                         frame_indices=tuple(int(v.offset + i) for i in idx.tolist()))

    def follow_up(self, traj: Trajectory, question: str) -> tuple[Message, ...]:
        """The dialogue of a finished rollout with a task question asked after it."""
        return self._messages(traj, Message.user(
            self.prompts.task_answer.format(question=question)))

    # -- one round ---------------------------------------------------------------------------
    def _request(self, traj: Trajectory, lora: LoRARef | None) -> tuple[Request, tuple[Action,
                                                                                     ...]]:
        d, s = self.decoding, traj.state
        seed = turn_seed(d.seed, traj.video.video_id, traj.member, s.turns)
        rid = f"{traj.video.video_id}#{traj.member}.{s.turns}"
        if traj.next_kind == "think":
            msgs = self._messages(traj, Message.user(self.prompts.think))
            sp = SamplingParams(max_new_tokens=d.think_tokens, temperature=d.temperature,
                                top_p=d.top_p, seed=seed)
            return Request(msgs, sp, lora, rid), ()
        legal = tuple(legal_actions(s, self.env, self.table, self.thinking))
        text = self._observation(traj, legal)
        msgs = self._messages(traj, Message.user(*traj.pending, text))
        codes = tuple(a.code for a in legal)
        sp = SamplingParams(
            max_new_tokens=1 if d.constrained else d.action_tokens, temperature=d.temperature,
            top_p=d.top_p, seed=seed, allowed_tokens=codes if d.constrained else (),
            target_tokens=(ANSWER_ABNORMAL, ANSWER_NORMAL) if d.confidence else (),
            stop=() if d.constrained else ("\n",))
        return Request(msgs, sp, lora, rid), legal

    def _apply(self, traj: Trajectory, store: FrameStore, req: Request,
               legal: tuple[Action, ...], comp: Any) -> None:
        s = traj.state
        last = req.messages[-1]
        text = comp.text
        traj.history.extend([last, Message("assistant", (TextPart(text),))])
        s.turns += 1
        if traj.next_kind == "think":
            traj.turns.append(Turn("think", req, list(comp.token_ids), text))
            traj.next_kind, traj.pending, traj.event = "action", [], EVENTS["think"]
            return
        conf = _confidence(comp)
        act = parse_action(text, legal)
        turn = Turn("action", req, list(comp.token_ids), text,
                    tuple(req.sampling.allowed_tokens), act, tuple(a.code for a in legal),
                    conf, s.window)
        traj.turns.append(turn)
        traj.pending, traj.event = [], ""
        if act is None:
            traj.invalid += 1
            traj.event = EVENTS["invalid"]
            if s.turns >= self.env.max_turns:  # the last turn was unreadable: no judgement
                traj.forced, s.done = True, True
                traj.p_abnormal = conf
            return
        if act.kind == "answer":
            traj.answer = int(act.arg or 0)
            traj.p_abnormal = conf if conf is not None else float(traj.answer)
            traj.forced = all(a.kind == "answer" for a in legal)
            s.done = True
        elif act.kind == "think":
            traj.next_kind = "think"
        else:
            w = operator_window(s, act.kind, act.arg, self.env)
            assert w is not None  # legal actions apply
            idx = self.env.view(w, s.num_frames)
            turn.new_frames = len(s.show(w, idx))
            turn.window = w
            traj.pending = [self._video_part(traj, store, idx)]
            traj.event = EVENTS[act.kind]

    # -- rollouts ----------------------------------------------------------------------------
    def start(self, videos: Sequence[ReviewVideo], group: int = 1
              ) -> tuple[list[Trajectory], dict[str, FrameStore], dict[str, VideoError]]:
        """``group`` fresh rollouts per video (first view decoded), the frame stores, and the
        videos whose first view could not be decoded (left out)."""
        trajs: list[Trajectory] = []
        stores: dict[str, FrameStore] = {}
        errors: dict[str, VideoError] = {}
        for v in videos:
            store = FrameStore(v, self.max_pixels)
            try:
                state, idx = start_state(v.video_id, v.num_frames, self.env)
                store.get(idx)
            except VideoError as exc:
                errors[v.video_id] = exc
                continue
            stores[v.video_id] = store
            for m in range(group):
                state, idx = start_state(v.video_id, v.num_frames, self.env)
                state.show(state.window, idx)
                t = Trajectory(v, m, state, event=self.prompts.first_event)
                t.pending = [self._video_part(t, store, idx)]
                trajs.append(t)
        return trajs, stores, errors

    def run(self, videos: Sequence[ReviewVideo], group: int = 1, lora: LoRARef | None = None
            ) -> tuple[list[Trajectory], dict[str, VideoError]]:
        """Roll out ``group`` trajectories per video to their ends (video-major order) and the
        videos that could not be read."""
        trajs, stores, errors = self.start(videos, group)
        bad: set[str] = set()
        while True:
            active = [t for t in trajs if not t.done and t.video.video_id not in bad]
            if not active:
                break
            built = [self._request(t, lora) for t in active]
            comps: list[Any] = []
            reqs = [r for r, _ in built]
            for lo in range(0, len(reqs), self.batch_size):
                comps.extend(r.completions[0] for r in self.engine.generate(
                    reqs[lo:lo + self.batch_size]))
            for t, (req, legal), comp in zip(active, built, comps, strict=True):
                try:
                    self._apply(t, stores[t.video.video_id], req, legal, comp)
                except VideoError as exc:
                    errors[t.video.video_id] = exc
                    bad.add(t.video.video_id)
        return [t for t in trajs if t.video.video_id not in bad], errors


def with_sampling(req: Request, **changes: Any) -> Request:
    """``req`` with its sampling parameters changed."""
    return replace(req, sampling=replace(req.sampling, **changes))
