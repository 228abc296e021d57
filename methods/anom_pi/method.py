"""``anom-pi`` and ``anom-pi-passive``: the active video-reviewing agent, and the passive
baseline with the same backbone and frame budget.

``anom-pi`` reviews each video through :class:`methods.anom_pi.rollout.Reviewer` (greedy by
default, many videos per engine call): it starts from a glance at the whole video, moves its
window with the temporal operators and ends with a judgement. ``anom-pi-passive`` shows the
same number of frames (``max_frames``) uniformly over the whole video in one view and asks for
the judgement at once: the same code with a one-turn budget, so the difference between the two
is the value of being active.

* **Frame tasks** (UCF-Crime, XD-Violence, ComplexVAD): ``p`` = the confidence ``P(A) / (P(A)
  + P(B))`` read at the answering turn (1 / 0 from the letter when the engine returns no
  log-probabilities). Every frame scores ``p``; when the judgement is "anomalous" and the final
  window is narrower than the video, frames outside that window score ``outside_weight * p``
  (the window is the localisation, an interval ``[start, stop)``, 0-based, stop exclusive).
* **Language tasks** (``vad_reasoning``, ``hivau``, ``vane``, ``vru_accident_*``): after the
  judgement every query of the sample is asked as a follow-up of the review dialogue (the frames
  it gathered are in context), with the query's own decoding; the task scores the text.

Every record keeps the review (``review``: each action, confidence, window and frames) and its
interaction cost; :meth:`AnomPiMethod.summarize` reports operator usage, mean turns, frames
decoded and the cost next to the task metrics, with the collapse flags of
:mod:`methods.anom_pi.diagnostics`.

``checkpoint``: a ``vad-eval train --method anom-pi`` output; it brings its review
configuration (environment, pixel budget, prompts), which explicit settings override.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.engines.base import LoRARef, Request, SamplingParams
from harness.training import CheckpointError
from harness.video import VideoError
from methods.anom_pi.aei import AEIWeights
from methods.anom_pi.diagnostics import action_usage
from methods.anom_pi.env import EnvConfig
from methods.anom_pi.policy import read_meta
from methods.anom_pi.rollout import Decoding, Reviewer, ReviewVideo, Trajectory
from methods.anom_pi.settings import ReviewConfig, review_config
from methods.base import Method, MethodNeeds, RunContext
from methods.rl.policy import checkpoint_digest, checkpoint_model
from tasks.base import VideoSample


@dataclass
class AnomPiSettings:
    """Settings; the review settings left None come from the checkpoint, else the defaults
    (:class:`methods.anom_pi.settings.ReviewConfig`)."""

    checkpoint: str | None = None
    prompt_file: str | None = None
    frames_per_view: int | None = None
    max_frames: int | None = None
    snippet: int | None = None
    snippet_stride: int | None = None
    max_turns: int | None = None
    zoom_segments: int | None = None
    expand_factor: float | None = None
    backtrack_shift: float | None = None
    max_pixels: int | None = None
    thinking: bool | None = None
    think_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    constrained: str = "auto"
    outside_weight: float = 0.5
    turn_cost: float | None = None
    frame_cost: float | None = None


def frame_scores(num_frames: int, p_abnormal: float, window: tuple[int, int] | None,
                 outside_weight: float) -> np.ndarray:
    """``(num_frames,)`` float64: ``p_abnormal`` everywhere, times ``outside_weight`` outside
    ``window`` (``[start, stop)``; None: no localisation)."""
    scores = np.full(num_frames, float(p_abnormal))
    if window is not None:
        lo, hi = max(0, window[0]), min(num_frames, window[1])
        if hi - lo < num_frames:
            outside = np.ones(num_frames, dtype=bool)
            outside[lo:hi] = False
            scores[outside] *= outside_weight
    return scores


class AnomPiMethod(Method):
    name = "anom-pi"
    description = ("Anom-π: an active reviewer that moves a temporal window with local "
                   "backtracking, temporal expansion and fine-grained sampling before judging "
                   "(iDPO-trained under the AEI utility)")
    task_kinds = frozenset({"frame", "mcq", "caption", "reasoning"})
    needs = MethodNeeds(engine=True)
    Settings = AnomPiSettings
    trained = True
    batches_samples: ClassVar[bool] = True
    passive: ClassVar[bool] = False

    def __init__(self, engine: Any = None, **settings: Any) -> None:
        super().__init__(engine, **settings)
        cfg: AnomPiSettings = self.settings
        if not 0.0 <= cfg.outside_weight <= 1.0:
            raise ValueError(f"{self.name}: outside_weight must be in [0, 1]")
        if cfg.constrained not in ("auto", "yes", "no"):
            raise ValueError(f"{self.name}: constrained must be auto, yes or no")
        self.meta: dict[str, Any] | None = None
        self._digest: str | None = None
        self._lora: LoRARef | None = None
        base = ReviewConfig()
        weights = AEIWeights()
        if cfg.checkpoint:
            self.meta = read_meta(cfg.checkpoint)
            self._digest = checkpoint_digest(cfg.checkpoint)
            try:
                base = ReviewConfig.from_dict(self.meta["review"], cfg.checkpoint)
                weights = AEIWeights(**self.meta.get("aei", {}))
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{cfg.checkpoint}: {exc}") from exc
            if self.meta["mode"] == "lora":
                self._lora = LoRARef(f"anom-pi-{self._digest[:16]}", path=str(cfg.checkpoint))
        self.review = review_config(cfg, base)
        if self.passive:  # one view of the whole frame budget, then the judgement
            env = self.review.env
            self.review = dataclasses.replace(self.review, env=EnvConfig(
                frames_per_view=env.max_frames // env.snippet, max_frames=env.max_frames,
                max_turns=1, zoom_segments=env.zoom_segments, snippet=env.snippet,
                snippet_stride=env.snippet_stride))
        self.weights = dataclasses.replace(
            weights, **{k: v for k, v in (("turn_cost", cfg.turn_cost),
                                           ("frame_cost", cfg.frame_cost)) if v is not None})

    @classmethod
    def engine_model(cls, method_args: dict[str, Any], model: str | None) -> str | None:
        ckpt = method_args.get("checkpoint")
        return checkpoint_model(ckpt, read_meta(ckpt), model) if ckpt else model

    @classmethod
    def train_routine(cls, job: Any) -> Any:
        """``vad-eval train --method anom-pi`` (see :mod:`methods.anom_pi.train`)."""
        from methods.anom_pi.train import train_anom_pi

        return train_anom_pi(job)

    def deterministic(self, sample: VideoSample) -> bool:
        return self.settings.temperature <= 0

    def _reviewer(self, ctx: RunContext) -> Reviewer:
        cfg: AnomPiSettings = self.settings
        engine = self.engine
        assert engine is not None
        if self._lora is not None and not engine.capabilities.lora:
            raise CheckpointError(f"{cfg.checkpoint}: a LoRA checkpoint needs an engine with "
                                  "LoRA support (hf, vllm)")
        constrained = engine.name == "hf" if cfg.constrained == "auto" \
            else cfg.constrained == "yes"
        decoding = Decoding(temperature=cfg.temperature, top_p=cfg.top_p,
                            think_tokens=self.review.think_tokens, constrained=constrained,
                            confidence=engine.capabilities.logprobs, seed=ctx.seed)
        r = self.review
        return Reviewer(engine, r.env, r.prompts, decoding, r.max_pixels, r.thinking,
                        ctx.batch_size)

    def _record(self, sample: VideoSample, video: ReviewVideo, traj: Trajectory
                ) -> dict[str, Any]:
        review = traj.summary()
        review["cost"] = round(self.weights.turn_cost * traj.state.turns
                               + self.weights.frame_cost * traj.state.frames_decoded, 6)
        p = traj.p_abnormal if traj.p_abnormal is not None else 0.5
        abnormal = traj.answer == 1
        window = traj.state.window
        interval = (window.start, window.stop) if abnormal else None
        rec: dict[str, Any] = {
            "video_id": sample.video_id, "review": review,
            "answer": {"abnormal": abnormal if traj.answer is not None else None,
                       "p_abnormal": p, "interval": list(interval) if interval else None,
                       "forced": traj.forced}}
        if not sample.queries:
            n = video.num_frames
            rec["num_frames"] = n
            rec["scores"] = frame_scores(n, p, interval, self.settings.outside_weight).tolist()
        return rec

    def _answer_queries(self, reviewer: Reviewer, pairs: list[tuple[VideoSample, Trajectory]],
                        records: dict[str, dict[str, Any]], ctx: RunContext) -> None:
        reqs: list[tuple[str, str, Request]] = []
        for sample, traj in pairs:
            for i, q in enumerate(sample.queries):
                sp = SamplingParams(max_new_tokens=q.max_new_tokens, temperature=q.temperature,
                                    top_p=q.top_p, seed=ctx.seed + i)
                reqs.append((sample.video_id, q.qid, Request(
                    reviewer.follow_up(traj, q.prompt), sp, self._lora,
                    f"{sample.video_id}#{q.qid}")))
        assert self.engine is not None
        for lo in range(0, len(reqs), ctx.batch_size):
            chunk = reqs[lo:lo + ctx.batch_size]
            for (vid, qid, req), resp in zip(chunk, self.engine.generate([r for *_, r in chunk]),
                                             strict=True):
                rec = records[vid]
                rec.setdefault("responses", {})[qid] = resp.completions[0].text
                rec.setdefault("finish_reasons", {})[qid] = resp.completions[0].finish_reason
                rec.setdefault("decoding", {})[qid] = {
                    "max_new_tokens": req.sampling.max_new_tokens,
                    "temperature": req.sampling.temperature, "top_p": req.sampling.top_p}

    def predict_many(self, samples: Sequence[VideoSample], ctx: RunContext
                     ) -> list[dict[str, Any] | VideoError]:
        """Review ``samples`` together (one engine call per turn for all of them)."""
        out: dict[str, dict[str, Any] | VideoError] = {}
        videos: dict[str, ReviewVideo] = {}
        for s in samples:
            try:
                start, stop = ctx.frame_range(s)
            except VideoError as exc:
                out[s.video_id] = exc
                continue
            videos[s.video_id] = ReviewVideo(s.video_id, s.path, stop - start, s.fps, start)
        reviewer = self._reviewer(ctx)
        trajs, errors = reviewer.run(list(videos.values()), 1, self._lora)
        out.update(errors)
        by_id = {t.video.video_id: t for t in trajs}
        records: dict[str, dict[str, Any]] = {}
        pairs = []
        for s in samples:
            if s.video_id in by_id:
                records[s.video_id] = self._record(s, videos[s.video_id], by_id[s.video_id])
                if s.queries:
                    pairs.append((s, by_id[s.video_id]))
        if pairs:
            self._answer_queries(reviewer, pairs, records, ctx)
        out.update(records)
        return [out[s.video_id] for s in samples]

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        res = self.predict_many([sample], ctx)[0]
        if isinstance(res, VideoError):
            raise res
        return res

    @classmethod
    def summarize(cls, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Operator usage, turns, frames decoded and interaction cost over the run's reviews
        (:func:`methods.anom_pi.diagnostics.action_usage`)."""
        reviews = [r["review"] for r in records if isinstance(r.get("review"), dict)]
        return action_usage(reviews) if reviews else {}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["checkpoint_sha256"] = self._digest
        d["review"] = self.review.to_dict()
        d["aei"] = dataclasses.asdict(self.weights)
        return d


class AnomPiPassive(AnomPiMethod):
    name = "anom-pi-passive"
    description = ("Anom-π's passive baseline: the same backbone and frame budget, frames "
                   "sampled uniformly in one view, one judgement")
    passive = True
