"""``vad_reasoning``: Vad-R1's Vad-Reasoning test set, scored as the official evaluation does.

Files: :mod:`tasks.formats.vad_reasoning`. One query per video: the P2C-CoT prompt
(:data:`tasks.prompts.VAD_REASONING`, our wording; ``prompt_file`` loads another template such
as the official one). Frames and decoding follow Vad-R1's inference: 16 frames at
``linspace(0, T - 1, 16)``, each at most 128x28x28 pixels, temperature 0.1, top-p 0.9, 512 new
tokens.

Detection (``1-evaluate_detection.py``): the predicted class is ``"Normal"`` iff the first
``<which>...</which>`` holds exactly ``Normal``, else ``"Abnormal"`` (a missing tag included);
``accuracy``, ``precision``, ``recall``, ``f1`` with Abnormal as the positive class (sklearn;
an undefined precision is 0). Temporal grounding: the predicted interval is the first
``<when>[a, b]</when>`` (``[0, 0]`` if absent; ``[0, 1]`` for a Normal prediction); per video
the 1-D IoU with the ground truth when the classes agree, else 0 (so a correct Normal scores
1); ``miou`` and ``r03`` / ``r05`` / ``r07`` (IoU >= 0.3 / 0.5 / 0.7) averaged over videos.
``unparsed`` counts outputs with no ``<which>`` tag.

Reasoning (``2-evaluate_reasoning.py``): reference = tag-stripped ``think`` + ``answer``,
hypothesis = tag-stripped output (tags and newlines removed); BLEU and METEOR on lower-cased
NLTK word tokens: ``bleu_1`` .. ``bleu_4`` are individual n-gram orders (``sentence_bleu`` with
one-hot weights, no smoothing), ``meteor`` NLTK's; ``rouge1_p`` .. ``rougeL_f`` from the
``rouge`` package on the texts as they are (the official passes them un-lowered); an
output shorter than 5 characters scores 0 on all; means over videos.

Videos without a prediction are left out of every mean (as the official loops do) and counted
in ``missing_videos``.

Training data (Vad-R1's two stages, :mod:`methods.vad_r1`): :meth:`VadReasoningTask.load_sft`
reads ``Vad-Reasoning-SFT-train.jsonl`` (chain-of-thought rows; ``train_annotations`` overrides),
:meth:`VadReasoningTask.load_train` the video-level labels of ``Vad-Reasoning-RL-train.jsonl``
(``rl_annotations`` overrides; without an RL file, the SFT rows' labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tasks.answers import strip_tags, vad_r1_official_class, vad_r1_official_when
from tasks.base import Query, TaskDataError, VideoSample
from tasks.formats import vad_reasoning as fmt
from tasks.prompts import VAD_REASONING, PromptTemplate, load_template
from tasks.text_task import FramePlan, Item, TextSettings, TextTask
from tasks.training import TrainVideo

IOU_THRESHOLDS = (0.3, 0.5, 0.7)


@dataclass
class VadReasoningSettings(TextSettings):
    prompt_file: str | None = None
    annotations: str | None = None
    train_annotations: str | None = None
    rl_annotations: str | None = None


@dataclass(frozen=True)
class ReasoningExample:
    """A chain-of-thought training video: ``think`` (``<think>...</think>``) and ``answer``
    (``<answer>...</answer>``) as annotated."""

    video: TrainVideo
    think: str
    answer: str


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """1-D IoU of ``[a0, a1]`` and ``[b0, b1]``; 0 when the union is empty."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def detection_metrics(gt: Sequence[tuple[str, tuple[float, float]]],
                      pred: Sequence[tuple[str, tuple[float, float]]]) -> dict[str, float]:
    """Classification and grounding metrics over paired ``(class, interval)`` lists."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    y_true = [c for c, _ in gt]
    y_pred = [c for c, _ in pred]
    ious = [interval_iou(g[1], p[1]) if g[0] == p[0] else 0.0
            for g, p in zip(gt, pred, strict=True)]
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, pos_label="Abnormal",
                                           zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, pos_label="Abnormal", zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, pos_label="Abnormal", zero_division=0)),
        "miou": float(np.mean(ious)),
    }
    for t in IOU_THRESHOLDS:
        out[f"r{int(round(t * 10)):02d}"] = float(np.mean([iou >= t for iou in ious]))
    return out


def reasoning_metrics(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """BLEU-1..4 (individual orders), METEOR and ROUGE P/R/F, means over pairs; a hypothesis
    shorter than 5 characters scores 0 on all (Vad-R1's rule)."""
    from tasks.metrics.text import bleu_individual, meteor_scores, rouge_prf

    keep = [i for i, h in enumerate(hyps) if len(h) >= 5]
    n = len(hyps)
    per: dict[str, np.ndarray] = {}
    if keep:
        r = [refs[i] for i in keep]
        h = [hyps[i] for i in keep]
        scores = {**bleu_individual(r, h, lowercase=True),
                  "meteor": meteor_scores(r, h, lowercase=True, drop_punct=False),
                  **rouge_prf(r, h, backend="rouge", stemmer=False)}  # case kept, as official
        for key, values in scores.items():
            full = np.zeros(n)
            full[keep] = np.asarray(values, dtype=np.float64)
            per[key] = full
    else:
        for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor"):
            per[key] = np.zeros(n)
    return {k: float(np.mean(v)) for k, v in per.items()}


class VadReasoningTask(TextTask):
    name = "vad_reasoning"
    kind = "reasoning"
    headline = ("accuracy", "f1", "miou", "r05", "bleu_4", "meteor", "rougeL_f")
    metric_keys = ("accuracy", "precision", "recall", "f1", "miou", "r0[357]", "bleu_[1-4]",
                   "meteor", "rouge(1|2|L)_(p|r|f)")
    dataset = "Vad-Reasoning"
    description = "Vad-R1's Vad-Reasoning test: detection, grounding and reasoning text"
    frame_plan_default: ClassVar[FramePlan] = FramePlan(16, "linspace", 128 * 28 * 28)
    sample_dataset = "vad_reasoning"
    Settings = VadReasoningSettings
    settings: VadReasoningSettings

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        pf = self.settings.prompt_file
        self.template: PromptTemplate = load_template(pf) if pf else VAD_REASONING

    def protocol(self) -> dict[str, Any]:
        return super().protocol() | {
            "prompt": {"source": self.template.source, "system": self.template.system,
                       "user": self.template.user},
            "decoding": {"temperature": 0.1, "top_p": 0.9, "max_new_tokens": 512},
            "detection": "official: Normal iff first <which> == 'Normal'; IoU 0 on class "
                         "mismatch; R@0.3/0.5/0.7",
            "reasoning": "tag-stripped, lower-cased NLTK tokens; individual-order BLEU, "
                         "METEOR, rouge package P/R/F; < 5 chars scores 0",
        }

    @staticmethod
    def find_annotations(root: Path, setting: str | None, name: str) -> Path | None:
        """``setting`` (relative to ``root`` unless absolute), else ``name`` at or under
        ``root``; None if there is no such file."""
        if setting:
            path = Path(setting)
            path = path if path.is_absolute() else root / path
            return path if path.is_file() else None
        hits = [root / name] + sorted(root.rglob(name))
        return next((p for p in hits if p.is_file()), None)

    def read_samples(self, root: Path) -> list[VideoSample]:
        path = self.find_annotations(root, self.settings.annotations, fmt.TEST_FILE)
        if path is None:
            raise TaskDataError(f"{self.settings.annotations or root / fmt.TEST_FILE}: "
                                "Vad-Reasoning test file not found (give it with --task-arg "
                                "annotations=FILE)")
        self.sources["annotations"] = str(path)
        samples = []
        for row in fmt.read_rows(path):
            vpath = fmt.video_file(root, row)
            extra: dict[str, Any] = {"source": row.source, "anomaly_type": row.anomaly_type,
                                     "video": row.video}
            if vpath is None:
                extra["unreadable"] = f"video {row.video!r} not found under {root}"
            query = Query("reasoning", self.template.user, category=row.source or "all",
                          answer_format="vad_r1", max_new_tokens=512, temperature=0.1,
                          top_p=0.9, system=self.template.system)
            ref = {"label": row.label, "interval": list(row.interval),
                   "think": row.think, "answer": row.answer}
            samples.append(VideoSample(Path(row.video).stem, row.total_frames, 0.0,
                                       category=row.label, path=vpath, extra=extra,
                                       queries=(query,), references={"reasoning": ref}))
        return samples

    # -- training data -----------------------------------------------------------------------
    def _train_rows(self, root: Path, weak: bool) -> list[TrainVideo | ReasoningExample]:
        setting = self.settings.rl_annotations if weak else self.settings.train_annotations
        name = fmt.RL_FILE if weak else fmt.TRAIN_FILE
        path = self.find_annotations(root, setting, name)
        if path is None:
            raise TaskDataError(f"{setting or root / name}: Vad-Reasoning "
                                f"{'RL' if weak else 'SFT'} training file not found (set "
                                f"--task-arg {'rl' if weak else 'train'}_annotations=FILE)")
        self.train_sources["rl_annotations" if weak else "train_annotations"] = str(path)
        out: list[TrainVideo | ReasoningExample] = []
        for row in fmt.read_rows(path, weak=weak):
            vpath = fmt.video_file(root, row)
            if vpath is None:
                raise TaskDataError(f"{path}:{row.lineno}: video {row.video!r} not found under "
                                    f"{root}")
            video = TrainVideo(Path(row.video).stem, vpath, int(row.label == "Abnormal"),
                               row.anomaly_type, 0.0, row.total_frames)
            out.append(video if weak else ReasoningExample(video, row.think, row.answer))
        if not out:
            raise TaskDataError(f"{path}: no training rows")
        return out

    def load_sft(self, data_root: Path | None, split: str) -> list[ReasoningExample]:
        """The chain-of-thought training rows (``Vad-Reasoning-SFT-train.jsonl``), file order;
        ``split`` as in :meth:`load` (``"sample"``: the sample world)."""
        root = self.resolve_root(data_root, split, self.sample_dataset)
        self.train_sources = {"data_root": str(root)}
        return [r for r in self._train_rows(root, weak=False) if isinstance(r, ReasoningExample)]

    def load_train(self, data_root: Path | None, split: str) -> list[TrainVideo]:
        """Video-level training labels for RL: ``Vad-Reasoning-RL-train.jsonl`` when there is
        one (or ``rl_annotations``), else the SFT rows' labels."""
        root = self.resolve_root(data_root, split, self.sample_dataset)
        self.train_sources = {"data_root": str(root)}
        if self.settings.rl_annotations or self.find_annotations(root, None, fmt.RL_FILE):
            return [r for r in self._train_rows(root, weak=True) if isinstance(r, TrainVideo)]
        return [r.video for r in self._train_rows(root, weak=False)
                if isinstance(r, ReasoningExample)]

    def describe(self, samples: Sequence[VideoSample]) -> dict[str, Any]:
        out = super().describe(samples)
        out["abnormal_videos"] = sum(1 for s in samples if s.category == "Abnormal")
        out["normal_videos"] = sum(1 for s in samples if s.category == "Normal")
        return out

    @staticmethod
    def reference_text(ref: dict[str, Any]) -> str:
        return strip_tags(ref["think"]) + strip_tags(ref["answer"])

    def judge_pairs(self, items: Sequence[Item]) -> list[tuple[str, str]]:
        return [(self.reference_text(it.reference), strip_tags(it.response or ""))
                for it in items]

    def score(self, items: Sequence[Item]) -> dict[str, Any]:
        gt, pred, refs, hyps = [], [], [], []
        unparsed = 0
        for it in items:
            text = it.response or ""
            if "<which>" not in text.lower():
                unparsed += 1
            cls = vad_r1_official_class(text)
            when = (0.0, 1.0) if cls == "Normal" else vad_r1_official_when(text)
            gt.append((it.reference["label"], tuple(it.reference["interval"])))
            pred.append((cls, when))
            refs.append(self.reference_text(it.reference))
            hyps.append(strip_tags(text))
        metrics = detection_metrics(gt, pred) | reasoning_metrics(refs, hyps)
        return {"metrics": metrics, "unparsed": unparsed}
