"""``hivau``: HIVAU-70K's test questions at clip, event and video level (Holmes-VAU).

Files and video resolution: :mod:`tasks.formats.hivau`. One sample per video file (or per clip
or event cut from its raw video); its queries are the instruction rows on that file, asked
with the row's own prompt. ``level`` (``--level`` / ``--task-arg level=clip``) keeps one level;
by default all three are run and reported separately.

Frames and decoding follow Holmes-VAU's inference (``inference.py``): 12 frames, the middle
frame of 12 equal segments of the clip (its temporal sampler ATS replaces this only for videos
longer than 192 frames and needs Holmes-VAU's own anomaly scorer; we always sample uniformly),
448x448 pixels, greedy, up to 1,024 new tokens.

Metrics. The official scoring script was never released (HolmesVAU issues #8, #9, #15, #17);
the paper names pycocoevalcap. Our choices, stated so that numbers can be compared:

* pycocoevalcap 1.2: BLEU-1..4 (corpus BLEU, "closest" reference length), CIDEr (CIDEr-D with
  document frequencies from the scored group's references), METEOR 1.5 (Java) and ROUGE-L;
* every text is tokenised with pycocoevalcap's PTBTokenizer (Stanford PTB tokenizer, lower
  case, punctuation removed) before scoring, as pycocoevalcap's COCO evaluation does;
* one reference per question (the row's answer);
* groups scored separately: each level (``clip_*``, ``event_*``, ``video_*``) over all its
  questions, and each level and task type (``event_judgement_*``, ``event_description_*``,
  ``event_analysis_*``, ...). Corpus-level metrics (BLEU, CIDEr, METEOR) are computed per
  group, not averaged over groups;
* an unanswered question scores as an empty hypothesis.

Metric keys: ``<level>_<metric>`` and ``<level>_<task>_<metric>`` with metric in ``bleu_1`` ..
``bleu_4``, ``cider``, ``meteor``, ``rouge_l``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tasks.base import Query, TaskDataError, VideoSample
from tasks.formats import hivau
from tasks.text_task import FramePlan, Item, TextSettings, TextTask

COCO_METRICS = ("bleu", "meteor", "rouge_l", "cider")


@dataclass
class HivauSettings(TextSettings):
    level: str | None = None
    instructions: str | None = None


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / "instruction" / name):
        if cand.is_file():
            return cand
    hits = sorted(p for p in root.rglob(name) if p.is_file())
    return hits[0] if hits else None


class HivauTask(TextTask):
    name = "hivau"
    kind = "caption"
    headline = tuple(f"{lv}_{m}" for lv in ("clip", "event", "video")
                     for m in ("bleu_4", "cider", "meteor", "rouge_l"))
    metric_keys = (f"({'|'.join(hivau.LEVELS)})(_({'|'.join(hivau.TASK_TYPES)}))?"
                   "_(bleu_[1-4]|meteor|rouge_l)",
                   f"({'|'.join(hivau.LEVELS)})(_({'|'.join(hivau.TASK_TYPES)}))?_cider")

    @classmethod
    def metric_range(cls, key: str) -> tuple[float, float]:
        """CIDEr-D is not a fraction: pycocoevalcap's values reach 10 (x10 tf-idf scale)."""
        return (0.0, 10.0) if key.endswith("cider") else (0.0, 1.0)
    dataset = "HIVAU-70K"
    description = "HIVAU-70K clip/event/video captions and judgements (pycocoevalcap)"
    frame_plan_default: ClassVar[FramePlan] = FramePlan(12, "mid", 448 * 448)
    sample_dataset = "hivau"
    Settings = HivauSettings
    settings: HivauSettings

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        lv = self.settings.level
        if lv is not None and lv not in (*hivau.LEVELS, "all"):
            raise ValueError(f"task 'hivau': level must be one of {hivau.LEVELS} or 'all', "
                             f"got {lv!r}")

    @property
    def levels(self) -> tuple[str, ...]:
        lv = self.settings.level
        return hivau.LEVELS if lv in (None, "all") else (str(lv),)

    def protocol(self) -> dict[str, Any]:
        return super().protocol() | {
            "levels": list(self.levels),
            "metrics": "pycocoevalcap 1.2 BLEU-1..4, CIDEr, METEOR, ROUGE-L after PTB "
                       "tokenisation; per level and per level+task type",
            "decoding": {"temperature": 0.0, "max_new_tokens": 1024},
            "spans": "[int(s*fps), int(e*fps)) frames of the raw video when no cut file",
        }

    def read_rows(self, root: Path) -> list[hivau.Row]:
        s = self.settings
        path = (Path(s.instructions) if s.instructions and Path(s.instructions).is_absolute()
                else root / s.instructions if s.instructions else _find(root, hivau.INSTRUCTIONS))
        if path is None or not path.is_file():
            raise TaskDataError(f"{root}: no {hivau.INSTRUCTIONS} found (give its path with "
                                f"--task-arg instructions=FILE)")
        self.sources["instructions"] = str(path)
        return hivau.read_rows(path)

    def read_database(self, root: Path) -> dict[str, hivau.RawVideo]:
        database: dict[str, hivau.RawVideo] = {}
        for path in sorted(root.rglob("*_database_test.json")):
            self.sources[f"database/{path.stem}"] = str(path)
            database.update(hivau.read_database(path))
        return database

    def read_samples(self, root: Path) -> list[VideoSample]:
        rows = [r for r in self.read_rows(root) if r.level in self.levels]
        locator = hivau.VideoLocator(root, self.read_database(root))
        grouped: dict[str, list[hivau.Row]] = defaultdict(list)
        for r in rows:
            grouped[r.video].append(r)
        samples = []
        for video, rs in grouped.items():
            levels = {r.level for r in rs}
            if len(levels) > 1:
                raise TaskDataError(f"{self.sources['instructions']}: video {video!r} appears "
                                    f"at several levels {sorted(levels)}")
            level = rs[0].level
            res = locator.resolve(video, level)
            queries = tuple(Query(r.id, r.prompt, category=f"{r.level}/{r.task}",
                                  answer_format="text", max_new_tokens=1024) for r in rs)
            extra: dict[str, Any] = {"level": level, "video": video}
            if res.reason:
                extra["unreadable"] = res.reason
            vid = str(Path(video).with_suffix(""))
            samples.append(VideoSample(vid, res.num_frames if res.span is None else 0, res.fps,
                                       path=res.path, extra=extra, span=res.span,
                                       queries=queries,
                                       references={r.id: r.answer for r in rs}))
        return samples

    def describe(self, samples: Sequence[VideoSample]) -> dict[str, Any]:
        per = Counter(q.category for s in samples for q in s.queries)
        out = super().describe(samples)
        out.pop("per_category", None)
        out["rows"] = sum(per.values())
        out["per_level_task"] = {k: per[k] for k in sorted(per)}
        out["per_level"] = {lv: sum(n for k, n in per.items() if k.startswith(lv + "/"))
                            for lv in self.levels}
        return out

    def judge_pairs(self, items: Sequence[Item]) -> list[tuple[str, str]]:
        return [(str(it.reference), it.response or "") for it in items]

    def score(self, items: Sequence[Item]) -> dict[str, Any]:
        from tasks.metrics.text import coco_caption_groups

        groups: dict[str, list[Item]] = defaultdict(list)
        for it in items:
            level, task = it.query.category.split("/", 1)
            groups[level].append(it)
            groups[f"{level}_{task}"].append(it)
        corpora = {
            name: ({f"{it.video_id}#{it.query.qid}": [str(it.reference)] for it in group},
                   {f"{it.video_id}#{it.query.qid}": it.response or "" for it in group})
            for name, group in sorted(groups.items())
        }
        metrics: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        for name, res in coco_caption_groups(corpora, COCO_METRICS).items():
            for key, value in res.corpus.items():
                metrics[f"{name}_{key}"] = float(value)
            for key, reason in res.unavailable.items():
                unavailable[f"{name}_{key}"] = reason
        return {"metrics": metrics, "unavailable_metrics": unavailable,
                "group_sizes": {name: len(g) for name, g in sorted(groups.items())},
                "unparsed": sum(1 for it in items if not it.response)}
