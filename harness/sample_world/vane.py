"""The ``vane`` sample: VANE-Bench's layout (multiple-choice questions on short frame clips).

Layout (as read by VANE-Bench's open-source inference scripts)::

    <group>/<Category>/video_frames/<clip>/frame_0000.jpg, frame_0001.jpg, ...
    <group>/<Category>/video_qa/<clip>_qa.txt
    meta.json

Groups and categories: ``Real-World/StreetCam`` (street by day or dusk: fight, shooting,
assault), ``Real-World/CampusCam`` (campus: riderless skateboard, chase, fall) and
``AI-Generated/SampleGen`` with VANE's inconsistency types "sudden appearance" and
"disappearance" (scripts in ``events.py``: a person pops into existence, or vanishes, at the
event's first frame). Clips are named ``video_<i>_subset_1`` (the naming VANE-Bench's scripts sort
on). Each clip is a 6-8 s video rendered at 30 fps of which every 10th frame is stored (0, 10,
20, ...: 18-24 JPEG frames at 3 fps); ``meta.json`` gives per clip folder the stored frame count
and rate.

``<clip>_qa.txt`` is a Python literal (``repr`` of a list, read with ``ast.literal_eval``) of 1-2
``{"Q": "<question>\\nA) ...\\nB) ...\\nC) ...\\nD) ...", "A": "<letter>"}`` dicts: first what is
unusual (the scripted anomaly against three things that do not happen in the clip), then, for
most clips, where it happens (zone of the scene, and for events in one place the side of the
frame) or, for the AI-generated clips, when (the appearance / disappearance frame is placed in
the middle of the first, second or last third of the clip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.sample_world import language as lang
from harness.sample_world.catalog import VideoSpec, dataset_id, place_events
from harness.sample_world.language import Chooser
from harness.sample_world.observe import ZONES, EventFacts, observe
from harness.sample_world.phrases import KINDS, distractors
from harness.sample_world.stage import TIMINGS, AnomalyEvent

DATASET = "vane"
FPS = 30
STEP = 10
CLIPS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("Real-World", "StreetCam", (("fight", "street"), ("shooting", "dusk"), ("assault", "street"))),
    (
        "Real-World",
        "CampusCam",
        (("skateboard", "campus"), ("chase", "campus"), ("fall", "campus")),
    ),
    (
        "AI-Generated",
        "SampleGen",
        (
            ("sudden_appearance", "street"),
            ("disappearance", "campus"),
            ("sudden_appearance", "campus"),
            ("disappearance", "dusk"),
        ),
    ),
)
#: Kinds whose discontinuity is one frame (the event's start).
POINT = ("sudden_appearance", "disappearance")
#: Kinds that move across the frame: "where" names only the zone.
MOVING = ("skateboard", "chase")
#: Wrong options for "what is unusual" besides other kinds: VANE's other inconsistency types.
ODDITIES = (
    "a car passes straight through a pedestrian",
    "a person's shirt suddenly changes colour",
    "a tree in the background melts into the ground",
)
WHEN = (
    "Near the beginning of the clip",
    "Around the middle of the clip",
    "Towards the end of the clip",
    "It lasts for the whole clip",
)
_SIDE = {"left": "on the left", "centre": "in the middle", "right": "on the right"}


def _point_event(kind: str, num_frames: int, rng: np.random.Generator) -> AnomalyEvent:
    """A discontinuity in the middle part of a random third of the clip."""
    third = int(rng.integers(3))
    start = int((third + rng.uniform(0.35, 0.65)) * num_frames / 3)
    timing = TIMINGS[kind]
    dur = int(rng.uniform(timing.min_s, timing.max_s) * FPS)
    return AnomalyEvent(kind, start, min(start + dur - 1, num_frames - 1))


def plan(seed: int) -> list[VideoSpec]:
    did = dataset_id(DATASET)
    rng = np.random.default_rng([seed, did, 0])
    specs: list[VideoSpec] = []
    for group, category, clips in CLIPS:
        for i, (kind, style) in enumerate(clips, start=1):
            num_frames = int(rng.uniform(6.0, 8.0) * FPS)
            if kind in POINT:
                events: tuple[AnomalyEvent, ...] = (_point_event(kind, num_frames, rng),)
            else:
                events = place_events(kind, 1, num_frames, FPS, rng)
            clip = f"video_{i}_subset_1"
            specs.append(
                VideoSpec(
                    f"{group}/{category}/video_frames/{clip}",
                    clip,
                    "test",
                    KINDS[kind].label,
                    kind,
                    num_frames,
                    FPS,
                    style,
                    events,
                    (did, 0, len(specs)),
                    frame_step=STEP,
                )
            )
    return specs


def _question(stem: str, options: list[str], right: int) -> dict[str, str]:
    lines = [stem] + [f"{lang.LETTERS[i]}) {o}" for i, o in enumerate(options)]
    return {"Q": "\n".join(lines), "A": lang.LETTERS[right]}


def _where(ch: Chooser, style: str, ev: EventFacts) -> dict[str, str]:
    """Where: the event's zone (one wording per zone) and, unless the event moves across the
    frame, the side of the frame; wrong options name other zones."""
    zones = [name for _, name in ZONES[style] if name not in ("verge", "lawn")]
    words = {z: lang.cap(lang.zone_at(ch, style, z)) for z in zones}
    if ev.kind in MOVING:
        right, wrong = words[ev.zone], [words[z] for z in zones if z != ev.zone]
    else:
        right = f"{words[ev.zone]}, {_SIDE[ev.side]}"
        wrong = [f"{words[z]}, {side}" for z in zones if z != ev.zone for side in _SIDE.values()]
    options, idx = lang.mcq(ch, right, wrong)
    stem = ch.pick(("Where does the unusual event take place?", "Where does the anomaly happen?"))
    return _question(stem, options, idx)


def questions(
    ch: Chooser, spec: VideoSpec, facts_ev: EventFacts, style: str
) -> list[dict[str, str]]:
    kind = facts_ev.kind
    right = lang.cap(ch.pick(KINDS[kind].short))
    wrong = [lang.cap(t) for t in distractors(kind) + list(ODDITIES)]
    options, idx = lang.mcq(ch, right, wrong)
    stem = ch.pick(
        (
            "What is unusual in this video?",
            "Which of these anomalies occurs in the video?",
            "What strange event can be seen in this clip?",
        )
    )
    out = [_question(stem, options, idx)]
    if kind in POINT and ch.chance(0.6):
        third = min(2, 3 * facts_ev.start // spec.num_frames)
        order = ch.shuffled(range(len(WHEN)))
        stem = ch.pick(
            ("When does the unusual event happen?", "At what point in the clip is the anomaly?")
        )
        out.append(_question(stem, [WHEN[i] for i in order], order.index(third)))
    elif ch.chance(0.75):
        out.append(_where(ch, style, facts_ev))
    return out


def write_layout(root: Path, seed: int, specs: list[VideoSpec]) -> None:
    did = dataset_id(DATASET)
    for i, spec in enumerate(specs):
        facts = observe(spec, seed)
        qa = questions(Chooser(seed, did, 1, i), spec, facts.events[0], spec.style)
        category = Path(spec.relpath).parents[1]
        path = root / category / "video_qa" / f"{spec.name}_qa.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(repr(qa) + "\n", encoding="utf-8")
