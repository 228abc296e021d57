"""``vad-r1``: Vad-R1's Perception-to-Cognition chain-of-thought inference on any task.

Inputs and decoding follow the official inference (``../shared/specs/PROTOCOLS.md`` §4): 16
frames at ``linspace(0, T - 1, 16)``, each at most 128x28x28 pixels, temperature 0.1, top-p
0.9, 512 new tokens (all settings).

* ``vad_reasoning``: the task's P2C-CoT question (``prompt_file`` loads another template, such as
  the official one); the whole output is the answer the task scores.
* Other language tasks (``vane``, ``hivau``, ``vru_accident_*``): the task's own question, with
  an instruction to reason in ``<think>`` and answer in ``<answer>`` appended (``think_suffix``;
  empty: none). The task receives the ``<answer>`` content (the whole output when there is no
  ``<answer>``), so its shared extractor reads the answer, not the reasoning; the raw output is
  kept in the record (``raw_responses``).
* Frame tasks: one P2C-CoT question per video; frame scores from the answer's class, interval
  and class probability (:mod:`methods.vad_r1.scoring`).

``checkpoint``: a ``vad-eval train --method vad-r1`` output. A full fine-tuning checkpoint is a
model directory: the run loads it as the engine's model (:meth:`VadR1Method.engine_model`); a
LoRA checkpoint is a PEFT directory sent with every request (engines with LoRA support). A
checkpoint brings the prompt it was trained with unless ``prompt_file`` is set. Without one
the backbone runs zero-shot with the same prompt and decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from harness.engines.base import LoRARef, Message, Request, SamplingParams, VideoPart
from harness.training import CheckpointError
from methods.answering import AnswerOverrides, answer_queries, sampled_fps
from methods.base import Method, MethodNeeds, RunContext
from methods.rl.policy import checkpoint_digest, checkpoint_model
from methods.vad_r1.inputs import FRAMES, MAX_PIXELS
from methods.vad_r1.policy import read_meta
from methods.vad_r1.scoring import frame_scores, normal_probability
from tasks.answers import parse_vad_r1
from tasks.base import VideoSample
from tasks.prompts import VAD_REASONING, PromptTemplate, load_template
from tasks.text_task import FramePlan

THINK_SUFFIX = ("\n\nFirst reason about the video step by step inside <think> </think>, then "
                "give only your final answer inside <answer> </answer>.")


@dataclass
class VadR1Settings:
    """Settings of ``vad-r1`` (module docstring)."""

    checkpoint: str | None = None
    prompt_file: str | None = None
    frames: int = FRAMES
    max_pixels: int | None = MAX_PIXELS
    temperature: float = 0.1
    top_p: float = 0.9
    max_new_tokens: int = 512
    think_suffix: str = THINK_SUFFIX
    top_logprobs: int = 20


class VadR1Method(Method):
    name = "vad-r1"
    description = ("Vad-R1: Perception-to-Cognition chain-of-thought answers (SFT + AVA-GRPO "
                   "trained); frame scores from the answer's class, interval and probability")
    task_kinds = frozenset({"frame", "mcq", "caption", "reasoning"})
    needs = MethodNeeds(engine=True)
    Settings = VadR1Settings
    trained = True

    def __init__(self, engine: Any = None, **settings: Any) -> None:
        super().__init__(engine, **settings)
        cfg: VadR1Settings = self.settings
        if cfg.frames < 1 or cfg.max_new_tokens < 1:
            raise ValueError(f"{self.name}: frames and max_new_tokens must be >= 1")
        self.meta: dict[str, Any] | None = None
        self._digest: str | None = None
        self._lora: LoRARef | None = None
        tpl = VAD_REASONING
        if cfg.checkpoint:
            self.meta = read_meta(cfg.checkpoint)
            self._digest = checkpoint_digest(cfg.checkpoint)
            prompt = self.meta.get("prompt") or {}
            if isinstance(prompt.get("user"), str):
                tpl = PromptTemplate(str(prompt.get("system") or ""), prompt["user"],
                                     f"checkpoint {cfg.checkpoint}")
            if self.meta["mode"] == "lora":
                self._lora = LoRARef(f"vad-r1-{self._digest[:16]}", path=str(cfg.checkpoint))
        self.template = load_template(cfg.prompt_file) if cfg.prompt_file else tpl
        self._checked = False

    @classmethod
    def engine_model(cls, method_args: dict[str, Any], model: str | None) -> str | None:
        """The model a run must load: a full fine-tuning checkpoint is the model itself."""
        ckpt = method_args.get("checkpoint")
        if not ckpt:
            return model
        return checkpoint_model(ckpt, read_meta(ckpt), model)

    @classmethod
    def train_routine(cls, job: Any) -> Any:
        """``vad-eval train --method vad-r1`` (see :mod:`methods.vad_r1.train`)."""
        from methods.vad_r1.train import train_vad_r1

        return train_vad_r1(job)

    def _check_engine(self) -> None:
        if self._checked or self.meta is None:
            return
        self._checked = True
        engine = self.engine
        if self._lora is not None and not (engine and engine.capabilities.lora):
            raise CheckpointError(f"{self.settings.checkpoint}: a LoRA checkpoint needs an "
                                  "engine with LoRA support (hf, vllm)")

    def deterministic(self, sample: VideoSample) -> bool:
        return self.settings.temperature <= 0

    # -- language tasks ----------------------------------------------------------------------
    def _answer(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        cfg: VadR1Settings = self.settings
        queries = []
        for q in sample.queries:
            if q.answer_format == "vad_r1":
                queries.append(replace(q, prompt=self.template.user,
                                       system=self.template.system))
            else:
                queries.append(replace(q, prompt=q.prompt + cfg.think_suffix))
        assert self.engine is not None
        rec = answer_queries(
            self.engine, replace(sample, queries=tuple(queries)), ctx,
            plan=FramePlan(cfg.frames, "linspace", cfg.max_pixels),
            overrides=AnswerOverrides(max_new_tokens=cfg.max_new_tokens,
                                      temperature=cfg.temperature, top_p=cfg.top_p),
            adapter=(lambda f, i: self._lora) if self._lora is not None else None)
        raw = dict(rec["responses"])
        for q in sample.queries:
            if q.answer_format != "vad_r1":
                ans = parse_vad_r1(raw[q.qid]).answer
                rec["responses"][q.qid] = ans if ans is not None else raw[q.qid]
        rec["raw_responses"] = raw
        return rec

    # -- frame tasks -------------------------------------------------------------------------
    def _frame_record(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        cfg: VadR1Settings = self.settings
        engine = self.engine
        assert engine is not None
        indices, frames = ctx.sample_frames(sample, cfg.frames, "linspace", cfg.max_pixels)
        logprobs = engine.capabilities.logprobs and cfg.top_logprobs > 0
        video = VideoPart(frames, fps=sampled_fps(indices, sample.fps),
                          frame_indices=tuple(int(i) for i in indices))
        msgs: tuple[Message, ...] = (Message.user(video, self.template.user),)
        if self.template.system:
            msgs = (Message.system(self.template.system), *msgs)
        req = Request(msgs, SamplingParams(
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
            logprobs=cfg.top_logprobs if logprobs else None, seed=ctx.seed),
            lora=self._lora, request_id=sample.video_id)
        comp = engine.generate([req])[0].completions[0]
        text = comp.text
        ans = parse_vad_r1(text)
        normal = ans.is_normal
        abnormal = normal is not True  # no readable <which>: abnormal (official rule)
        p_normal = normal_probability(text, comp.token_logprobs, comp.top_logprobs)
        source = "logprobs"
        if p_normal is None:
            p_normal, source = (0.0 if abnormal else 1.0), "answer"
        p_abn = 1.0 - p_normal
        n = sample.num_frames or ctx.frame_range(sample)[1]
        scores = frame_scores(n, p_abn, abnormal, ans.when if abnormal else None)
        return {"video_id": sample.video_id, "num_frames": n, "scores": scores.tolist(),
                "response": text, "finish_reason": comp.finish_reason,
                "answer": {"which": ans.which, "when": list(ans.when) if ans.when else None,
                           "abnormal": abnormal, "p_abnormal": p_abn,
                           "probability_from": source, "problems": ans.problems},
                "frames": {"indices": indices.tolist(), "max_pixels": cfg.max_pixels}}

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        self._check_engine()
        if sample.queries:
            return self._answer(sample, ctx)
        return self._frame_record(sample, ctx)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["checkpoint_sha256"] = self._digest
        d["prompt"] = {"source": self.template.source, "system": self.template.system,
                       "user": self.template.user}
        return d
