"""The ``vad_reasoning`` sample: Vad-R1's Vad-Reasoning SFT format (reasoning chains + answers).

Layout::

    videos/<name>.mp4                     UCF-style names (30 fps) or XD-style names (24 fps)
    Vad-Reasoning-SFT-test.jsonl          8 videos: 5 abnormal, 3 normal
    Vad-Reasoning-SFT-train.jsonl         6 other videos: 4 abnormal, 2 normal (for SFT)
    Vad-Reasoning-RL-train.jsonl          24 other videos: 12 abnormal, 12 normal (for RL)
    meta.json

One JSON row per video (key order as listed, rows in a seeded order mixing normal and abnormal):
``source`` (``"UCF"`` or ``"XD"``), ``video`` (``<name>.mp4``), ``anomaly_type`` (e.g.
``"Fighting"``; ``"Normal"``), ``path`` (``videos/<name>.mp4``, relative to the dataset root),
``total_frames``, for abnormal videos ``start`` and ``end`` (0-based frames of the anomaly, end
inclusive), ``think`` and ``answer``. Abnormal ``think`` holds four steps, ``<think><step1>scene
description</step1><step2>abnormal event and where it is</step2><step3>why it is
abnormal</step3><step4>consequences and social norms</step4></think>``; the answer paragraph
``<answer>...</answer>`` holds ``<which>`` (the anomaly type, as in Vad-R1's SFT prompt),
``<what>``, ``<when>`` (``[round(start / total_frames, 3), round(end / total_frames, 3)]``),
``<where>``, ``<why>`` and ``<how>``. Normal videos: two steps (scene; why it is normal) and an
answer with ``<which>Normal</which>``, ``<what>`` and ``<why>``. Texts are written from the
staged video (``observe.py``), so they name the actors, places and times the video shows.

``Vad-Reasoning-RL-train.jsonl`` stands in for Vad-Reasoning-RL (video-level weak labels only;
the public release's file layout is not documented, so the format is ours): the SFT rows' first
five keys only, ``source``, ``video``, ``anomaly_type`` (``"Normal"`` or the type), ``path`` and
``total_frames``. Its videos cover every anomaly kind of this module, the test kinds included
(other videos, as in the real dataset, whose RL and test sets share categories).

The anomalies are fires (``Arson``) and explosions, with their effects (flames, fireball, smoke)
drawn :data:`EFFECT_SCALE` times larger than in the other datasets (``VideoSpec.effect_scale``;
positions and timing unchanged): large enough for the random hidden-64 tiny model to learn
from a few dozen videos, which the Vad-R1 training test relies on (a fight's few pixels are
not).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.sample_world import language as lang
from harness.sample_world.catalog import UCF_CLASSES, XD_CODES, VideoSpec, dataset_id, place_events
from harness.sample_world.language import Chooser
from harness.sample_world.observe import VideoFacts, observe
from harness.sample_world.phrases import KINDS

DATASET = "vad_reasoning"
FPS = {"UCF": 30, "XD": 24}
STYLE = {"UCF": "street", "XD": "dusk"}
#: Size factor of the anomalies' visual effects in this dataset (VideoSpec.effect_scale).
EFFECT_SCALE = 4.0
#: (split, kind or None, source) of each video. The anomalies are fires (arson) and explosions,
#: whose effects (flames, fireball, smoke) are drawn EFFECT_SCALE times larger: the hidden-64
#: tiny model cannot learn person-scale anomalies (a fight or a shove: a few pixels of a
#: 160 x 120 frame) or brief ones (muzzle flashes) from a few dozen videos, and this sample is
#: what the Vad-R1 training test learns from. (XD-Violence has no arson class: fires are UCF.)
ITEMS: tuple[tuple[str, str | None, str], ...] = (
    ("test", "explosion", "UCF"),
    ("test", "fire", "UCF"),
    ("test", "explosion", "XD"),
    ("test", "fire", "UCF"),
    ("test", "explosion", "UCF"),
    ("test", None, "UCF"),
    ("test", None, "XD"),
    ("test", None, "UCF"),
    ("train", "fire", "UCF"),
    ("train", "explosion", "XD"),
    ("train", "explosion", "UCF"),
    ("train", "fire", "UCF"),
    ("train", None, "XD"),
    ("train", None, "UCF"),
    # Vad-Reasoning-RL stand-in
    *((("rl", kind, source) for kind, source in (
        ("fire", "UCF"), ("explosion", "XD"), ("explosion", "UCF"), ("fire", "UCF"),
        ("explosion", "XD"), ("fire", "UCF"),
    ) * 2)),
    *(("rl", None, source) for source in ("UCF", "XD") * 6),
)
TYPES = {
    "fight": "Fighting",
    "shooting": "Shooting",
    "explosion": "Explosion",
    "car_crash": "Traffic Accident",
    "vehicle_on_sidewalk": "Dangerous Driving",
    "assault": "Assault",
    "fire": "Arson",
    "abuse": "Abuse",
    "riot": "Riot",
}
FILES = {"test": "Vad-Reasoning-SFT-test.jsonl", "train": "Vad-Reasoning-SFT-train.jsonl",
         "rl": "Vad-Reasoning-RL-train.jsonl"}
#: keys of an RL row (video-level label only)
RL_KEYS = ("source", "video", "anomaly_type", "path", "total_frames")


def plan(seed: int) -> list[VideoSpec]:
    did = dataset_id(DATASET)
    rng = np.random.default_rng([seed, did, 0])
    specs: list[VideoSpec] = []
    counters: dict[str, int] = {}
    for index, (split, kind, source) in enumerate(ITEMS):
        fps = FPS[source]
        num_frames = int(rng.uniform(6.0, 9.0) * fps)
        events = place_events(kind, 1, num_frames, fps, rng) if kind else ()
        if source == "UCF":
            label = UCF_CLASSES[kind] if kind else "Normal"
            n = counters[label] = counters.get(label, 0) + 1
            name = f"{label}{n:03d}_x264" if kind else f"Normal_Videos_{n:03d}_x264"
        else:
            label = f"{XD_CODES[kind]}-0-0" if kind else "A"
            n = counters["XD"] = counters.get("XD", 0) + 1
            name = f"SampleWorld.s{seed}.v{n:02d}__#1_label_{label}"
        specs.append(
            VideoSpec(
                f"videos/{name}.mp4",
                name,
                split,
                TYPES[kind] if kind else "Normal",
                kind,
                num_frames,
                fps,
                STYLE[source],
                events,
                (did, 0 if split == "test" else 1, index),
                effect_scale=EFFECT_SCALE,
            )
        )
    return specs


def _scene(ch: Chooser, facts: VideoFacts) -> str:
    style = facts.style
    still = ch.pick(
        (
            "The building, the trees and the street furniture stay in place throughout.",
            "Apart from the people and vehicles, nothing in the scene moves.",
        )
    )
    return (
        f"The video shows {lang.place(ch, style)} {lang.lighting(ch, style)}, filmed by a "
        f"fixed camera. {lang.cap(lang.activity(ch, facts))}. {still}"
    )


def abnormal(ch: Chooser, spec: VideoSpec, facts: VideoFacts) -> tuple[str, str]:
    """``think`` and ``answer`` of an abnormal video."""
    ev = facts.events[0]
    k = KINDS[ev.kind]
    style, fps, total = facts.style, facts.fps, facts.num_frames
    what = lang.fill(ch, ch.pick(k.what), style, ev)
    why, how = ch.pick(k.why), ch.pick(k.how)
    where = f"{lang.region(ev.band, ev.side)}, {lang.zone_at(ch, style, ev.zone)}"
    step2 = (
        f"{ch.pick(('Then,', 'Partway through the video,', 'At one point,'))} {what}. The event "
        f"is located in {lang.region(ev.band, ev.side)} and lasts from about "
        f"{ev.start / fps:.1f} s to {(ev.end + 1) / fps:.1f} s."
    )
    step3 = f"{lang.cap(why)}. " + ch.pick(
        (
            "Nothing like it happens anywhere else in the video, which makes it stand out.",
            "It stands apart from the ordinary walking and driving in the rest of the video.",
        )
    )
    step4 = f"{lang.cap(how)}. " + ch.pick(
        (
            "Shared public spaces depend on people respecting each other's safety, and this "
            "event breaks that expectation.",
            "An event like this calls for a quick response from the police or emergency services.",
        )
    )
    think = (
        f"<think><step1>{_scene(ch, facts)}</step1><step2>{step2}</step2>"
        f"<step3>{step3}</step3><step4>{step4}</step4></think>"
    )
    when = str([round(ev.start / total, 3), round(ev.end / total, 3)])
    kind_type = TYPES[ev.kind]
    answer = ch.pick(
        (
            f"The anomaly in this video is <which>{kind_type}</which>: <what>{what}</what>. It "
            f"occurs in the normalized time range <when>{when}</when>, in <where>{where}</where>. "
            f"It is abnormal because <why>{why}</why>, and <how>{how}</how>.",
            f"This video shows <which>{kind_type}</which>. <what>{lang.cap(what)}</what> during "
            f"<when>{when}</when> of the video, in <where>{where}</where>. The reason it is "
            f"abnormal: <why>{why}</why>. The consequence: <how>{how}</how>.",
        )
    )
    return think, f"<answer>{answer}</answer>"


def normal(ch: Chooser, facts: VideoFacts) -> tuple[str, str]:
    """``think`` and ``answer`` of a normal video."""
    place = "campus" if facts.style == "campus" else "city street"
    step2 = (
        "Based on this, everything follows the usual pattern: "
        + ch.pick(
            (
                "no one runs, falls or fights, no vehicle leaves its lane, and nothing burns or "
                "collides.",
                "people move at a calm pace, cars keep to their lanes, and there is no sign of "
                "violence, fire or an accident.",
            )
        )
        + f" This is the ordinary rhythm of a {place}, so the video is normal."
    )
    think = f"<think><step1>{_scene(ch, facts)}</step1><step2>{step2}</step2></think>"
    what = lang.activity(ch, facts)
    why = ch.pick(
        (
            "people and vehicles move the way they are expected to, and nothing dangerous or "
            "unusual happens",
            "all activity is ordinary: walking along the paths and driving in the lanes",
        )
    )
    answer = ch.pick(
        (
            f"The video is <which>Normal</which>. In it, <what>{what}</what>. It is considered "
            f"normal because <why>{why}</why>.",
            f"This video is classified as <which>Normal</which>: <what>{what}</what>. Nothing is "
            f"abnormal, since <why>{why}</why>.",
        )
    )
    return think, f"<answer>{answer}</answer>"


def row(seed: int, index: int, spec: VideoSpec) -> dict[str, Any]:
    ch = Chooser(seed, dataset_id(DATASET), 1, index)
    facts = observe(spec, seed)
    source = "XD" if spec.style == STYLE["XD"] else "UCF"
    out: dict[str, Any] = {
        "source": source,
        "video": f"{spec.name}.mp4",
        "anomaly_type": spec.label,
        "path": spec.relpath,
        "total_frames": spec.num_frames,
    }
    if spec.kind is None:
        out["think"], out["answer"] = normal(ch, facts)
    else:
        ev = spec.events[0]
        out["start"], out["end"] = ev.start, ev.end
        out["think"], out["answer"] = abnormal(ch, spec, facts)
    return out


def write_layout(root: Path, seed: int, specs: list[VideoSpec]) -> None:
    ch = Chooser(seed, dataset_id(DATASET), 2)
    for split, name in FILES.items():
        rows = [row(seed, i, s) for i, s in enumerate(specs) if s.split == split]
        if split == "rl":
            rows = [{k: r[k] for k in RL_KEYS} for r in rows]
        text = "".join(json.dumps(r) + "\n" for r in ch.shuffled(rows))
        (root / name).write_text(text, encoding="utf-8")
