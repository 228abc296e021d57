"""The ``hivau`` sample: HIVAU-70K's UCF-Crime test part (HolmesVAU), three levels of text.

Layout (as in the HIVAU-70K release)::

    ucf-crime/videos/test/<Class><NNN>_x264.mp4, Normal_Videos_<NNN>_x264.mp4   (30 fps)
    raw_annotations/ucf_database_test.json
    instruction/merge_instruction_test_final.jsonl
    meta.json

The cut clip and event files of the release (``ucf-crime/clips/test/<name>_E<i>C<j>.mp4``,
``ucf-crime/events/test/<name>_E<i>.mp4``) are *not* written: readers derive their frames from
the raw video and the database times.

``ucf_database_test.json`` (indent 4, no final newline, keys sorted by name) maps each video name
(no extension) to ``n_frames``, ``fps`` (30.0), ``label`` (``[UCF class]``; ``[]`` for normal
videos, as in the original), ``events`` (``[[s, e], ...]`` seconds), ``clips`` (per event a list
of ``[s, e]`` sub-spans), ``clips_caption`` (per event a caption per clip), ``events_summary`` (a
paragraph per event), ``video_summary`` and their splits ``events_summary_split`` (per event
``{"judgement", "description", "analysis"}``; no ``analysis`` for normal videos) and
``video_summary_split``. Anomalous videos' events are the scripted anomaly intervals (clips: the
phases of the anomaly); normal videos' events are stretches of ordinary activity whose clips
describe people and cars actually in view. Times are seconds = frame / fps, rounded *up* to the
millisecond, so that ``int(t * fps)`` gives back the 0-based frame exactly (start and inclusive
end frame of each span). Clip spans lie inside their event, events inside the video.

``merge_instruction_test_final.jsonl``: rows ``{"id", "type", "task", "video", "prompt",
"anwser"}`` (sic), ids from 0, per video in name order: ``video`` judgement, description and (for
anomalous videos) analysis; then per event ``E<i>`` its judgement, description and (anomalous)
analysis, each followed by the caption rows of *all* clips of the video: with two events every
clip row appears twice, as in the original file. Answers equal the database texts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.sample_world import language as lang
from harness.sample_world.catalog import UCF_CLASSES, VideoSpec, dataset_id, place_events
from harness.sample_world.language import Chooser
from harness.sample_world.observe import Staged, actor_facts, observe, staged
from harness.sample_world.phrases import KINDS
from harness.sample_world.scene import WIDTH

DATASET = "hivau"
FPS = 30
#: Anomalous test videos as (kind, number of events), then NORMAL normal videos.
ANOMALIES = (
    ("fight", 2),
    ("assault", 1),
    ("shooting", 2),
    ("fire", 1),
    ("explosion", 1),
    ("car_crash", 1),
)
NORMAL = 3
NAMES = {"RoadAccidents": "Road Accident"}  # UCF class -> name in the texts, where different

PROMPTS = {
    "caption": (
        "What is happening in this clip?",
        "Give a short caption for this video.",
        "Describe what the people or vehicles in the clip are doing.",
        "Summarise the clip in one sentence.",
        "What do you see in this short video?",
    ),
    "judgement": (
        "Is there anything abnormal in this video?",
        "Does the video contain an anomaly? If so, name it.",
        "Check the video for anomalous events and classify them.",
        "Are any unusual events taking place here?",
        "Which kind of anomaly, if any, appears in this video?",
    ),
    "description": (
        "Describe the anomalous event in the video.",
        "What exactly happens during the anomaly?",
        "Give a description of any unusual event you see.",
        "Summarise the abnormal event shown here.",
    ),
    "analysis": (
        "Why is this event considered abnormal?",
        "Explain what makes this event an anomaly.",
        "On what grounds would you call this event anomalous?",
        "What are the reasons for judging this as an anomaly?",
    ),
}


def seconds(frame: int, fps: int) -> float:
    """``frame / fps`` rounded up to the millisecond: the smallest 3-decimal ``t`` with
    ``int(t * fps) == frame``."""
    ms = -(-frame * 1000 // fps)
    while int(ms / 1000 * fps) < frame:
        ms += 1
    return ms / 1000


def plan(seed: int) -> list[VideoSpec]:
    did = dataset_id(DATASET)
    rng = np.random.default_rng([seed, did, 0])
    items: list[tuple[str | None, int]] = [*ANOMALIES, *([(None, 0)] * NORMAL)]
    specs: list[VideoSpec] = []
    counters: dict[str, int] = {}
    for index, (kind, count) in enumerate(items):
        lo, hi = (8.0, 10.0) if count == 2 else (6.0, 8.0)
        num_frames = int(rng.uniform(lo, hi) * FPS)
        events = place_events(kind, count, num_frames, FPS, rng) if kind else ()
        label = UCF_CLASSES[kind] if kind else "Normal"
        n = counters[label] = counters.get(label, 0) + 1
        name = f"{label}{n:03d}_x264" if kind else f"Normal_Videos_{n:03d}_x264"
        specs.append(
            VideoSpec(
                f"ucf-crime/videos/test/{name}.mp4",
                name,
                "test",
                label,
                kind,
                num_frames,
                FPS,
                "street",
                events,
                (did, 0, index),
            )
        )
    return specs


def _split_spans(start: int, end: int, fractions: list[float]) -> list[tuple[int, int]]:
    """Consecutive sub-spans of ``start..end`` ending at the given fractions (last = 1.0)."""
    length = end - start + 1
    bounds = [start] + [start + round(f * length) for f in fractions[:-1]] + [end + 1]
    return [(a, b - 1) for a, b in zip(bounds, bounds[1:], strict=False)]


def _ordinary(ch: Chooser, st: Staged, style: str, t0: int, t1: int) -> str:
    """A caption of the ordinary activity on frames ``t0..t1``: up to two background actors that
    are in view for most of the span."""
    shown = []
    for a in st.background:
        inside = a.visible[t0 : t1 + 1] & (a.x[t0 : t1 + 1] >= 0) & (a.x[t0 : t1 + 1] < WIDTH)
        if inside.mean() >= 0.6:
            shown.append(actor_facts(style, a, t0, t1))
    people = [f for f in shown if f.kind == "person" and (f.heading or f.zone == "road")]
    cars = [f for f in shown if f.kind == "car" and f.heading]
    parts = []
    for f in ch.sample(people, min(len(people), 1)) + ch.sample(cars, min(len(cars), 1)):
        who = lang.actor(ch, f)
        if f.kind == "car":
            parts.append(f"{who} drives {lang.direction(f.heading)} along the road")
        elif f.heading == 0:
            parts.append(f"{who} crosses the road at the zebra crossing")
        else:
            way = lang.zone(ch, style, f.zone)
            parts.append(f"{who} walks {lang.direction(f.heading)} along {way}")
    if not parts:
        return "A quiet moment: hardly anyone moves through the scene."
    return lang.cap(" while ".join(parts)) + "."


def _entry(seed: int, index: int, spec: VideoSpec) -> dict[str, Any]:
    """The database entry of one video."""
    ch = Chooser(seed, dataset_id(DATASET), 1, index)
    facts = observe(spec, seed)
    style, fps = spec.style, spec.fps
    events, clips, captions, summaries, splits = [], [], [], [], []
    if spec.kind is None:
        st = staged(spec, seed)
        k = 1 if ch.chance(0.5) else 2
        edges = np.linspace(int(0.4 * fps), spec.num_frames - int(0.4 * fps), k + 1).astype(int)
        spans = [(int(a), int(b) - int(0.3 * fps)) for a, b in zip(edges, edges[1:], strict=False)]
        judge = ("No anomaly is present in the video.", "There is no anomaly in this video.")
        for s, e in spans:
            parts = _split_spans(s, e, [0.5, 1.0] if ch.chance(0.6) else [1.0])
            caps = [_ordinary(ch, st, style, a, b) for a, b in parts]
            events.append((s, e))
            clips.append(parts)
            captions.append(caps)
            j = ch.pick(judge)
            d = ch.pick(("The video shows an ordinary scene.", "Everyday activity only.")) + " "
            d += " ".join(caps)
            summaries.append(f"{j} {d}")
            splits.append({"judgement": j, "description": d})
        j = ch.pick(judge)
        d = (
            f"The camera shows {lang.place(ch, style)} {lang.lighting(ch, style)}. "
            f"{lang.cap(lang.activity(ch, facts))}, and nothing out of the ordinary happens."
        )
        video_split = {"judgement": j, "description": d}
        video_summary = f"{j} {d}"
        label: list[str] = []
    else:
        k_text = KINDS[spec.kind]
        name = NAMES.get(spec.label, spec.label)
        whats = []
        for ev in facts.events:
            fracs = [f for f, _ in k_text.phases]
            phased = len(fracs) > 1 and ch.chance(0.7)
            parts = _split_spans(ev.start, ev.end, fracs if phased else [1.0])
            if phased:
                caps = [
                    lang.cap(lang.fill(ch, ch.pick(c), style, ev)) + "." for _, c in k_text.phases
                ]
            else:
                caps = [lang.cap(lang.fill(ch, ch.pick(k_text.what), style, ev)) + "."]
            what = lang.fill(ch, ch.pick(k_text.what), style, ev)
            whats.append((ev.start, what))
            j = ch.pick(
                (
                    f"An anomaly is present: {name}.",
                    f"There is an anomaly in this video, namely {name}.",
                    f"Yes, the video shows an anomaly of the type {name}.",
                )
            )
            d = ch.pick((f"{lang.cap(what)}.", f"In this event, {what}.", f"The anomaly: {what}."))
            d += f" It takes place in {lang.region(ev.band, ev.side)}."
            a = f"{lang.cap(ch.pick(k_text.why))}. {lang.cap(ch.pick(k_text.how))}."
            events.append((ev.start, ev.end))
            clips.append(parts)
            captions.append(caps)
            summaries.append(f"{j} {d} {a}")
            splits.append({"judgement": j, "description": d, "analysis": a})
        j = ch.pick(
            (f"The video contains an anomaly: {name}.", f"An anomaly occurs, namely {name}.")
        )
        timeline = [
            f"{'At' if i == 0 else 'Later, at'} about {start / fps:.1f} seconds, {what}."
            for i, (start, what) in enumerate(whats)
        ]
        d = f"The camera shows {lang.place(ch, style)} {lang.lighting(ch, style)}. " + " ".join(
            timeline
        )
        a = f"This is abnormal because {ch.pick(k_text.why)}. {lang.cap(ch.pick(k_text.how))}."
        video_split = {"judgement": j, "description": d, "analysis": a}
        video_summary = f"{j} {d} {a}"
        label = [spec.label]
    return {
        "n_frames": spec.num_frames,
        "fps": float(fps),
        "label": label,
        "events": [[seconds(s, fps), seconds(e, fps)] for s, e in events],
        "clips": [[[seconds(s, fps), seconds(e, fps)] for s, e in c] for c in clips],
        "clips_caption": captions,
        "events_summary": summaries,
        "video_summary": video_summary,
        "events_summary_split": splits,
        "video_summary_split": video_split,
    }


def instructions(seed: int, database: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The QA rows of all videos (see the module docstring for their order)."""
    ch = Chooser(seed, dataset_id(DATASET), 2)
    rows: list[dict[str, Any]] = []

    def add(kind: str, task: str, video: str, answer: str) -> None:
        row = {"id": len(rows), "type": kind, "task": task, "video": video}
        rows.append({**row, "prompt": ch.pick(PROMPTS[task]), "anwser": answer})

    for name, entry in database.items():
        tasks = ("judgement", "description", "analysis")
        for task in tasks:
            if task in entry["video_summary_split"]:
                text = entry["video_summary_split"][task]
                add("video", task, f"ucf-crime/videos/test/{name}.mp4", text)
        for i, split in enumerate(entry["events_summary_split"]):
            for task in tasks:
                if task in split:
                    add("event", task, f"ucf-crime/events/test/{name}_E{i}.mp4", split[task])
            for e, caps in enumerate(entry["clips_caption"]):
                for c, text in enumerate(caps):
                    add("clip", "caption", f"ucf-crime/clips/test/{name}_E{e}C{c}.mp4", text)
    return rows


def write_layout(root: Path, seed: int, specs: list[VideoSpec]) -> None:
    entries = {s.name: _entry(seed, i, s) for i, s in enumerate(specs)}
    database = dict(sorted(entries.items()))
    path = root / "raw_annotations" / "ucf_database_test.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(database, indent=4), encoding="utf-8")
    rows = instructions(seed, database)
    path = root / "instruction" / "merge_instruction_test_final.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
