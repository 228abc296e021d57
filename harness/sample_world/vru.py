"""The ``vru_accident`` sample: VRU-Accident's layout, with accidents involving pedestrians and
cyclists (scripts in ``accidents.py``, plus ``vehicle_on_sidewalk``: a near miss).

Layout (as in the VRU-Accident release)::

    VRU_videos/<SUBSET>/VRU_<n>.mp4                       n = 1, 2, ... per subset
    MetaData/<SUBSET>/<SUBSET>_VQA_annotation.json
    MetaData/<SUBSET>/<SUBSET>_Dense_Caption.json
    meta.json

for SUBSET in CAP_DATA, DADA_2000, DoTA, MANUAL_DATA (2-3 videos each, 30 fps, one accident per
video). The VQA file maps ``"./VRU_videos/<SUBSET>/VRU_<n>.mp4"`` to six categories, ``weather and
light``, ``location``, ``road type``, ``accident type``, ``accident reason`` and ``prevention
method``, each ``{"question", "options": "A. ..., B. ..., C. ..., D. ...", "GT": letter}``; the
correct option is derived from the scene (style: day / dusk, street / campus) and the scripted
accident, the three others come from the same category's pool and never also fit the video. The
caption file maps ``"./VRU_videos/<SUBSET>/VRU_<n>"`` (no extension) to ``{"gt": paragraph}``. Both
JSON files are indented by 2 with CRLF line ends, like the originals. Times in the captions are
seconds = frame / fps (frames 0-based). ``meta.json`` labels each video with its accident kind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.sample_world import language as lang
from harness.sample_world.accidents import IMPACT_S
from harness.sample_world.catalog import VideoSpec, dataset_id, place_one
from harness.sample_world.language import Chooser
from harness.sample_world.observe import EventFacts, VideoFacts, observe

DATASET = "vru_accident"
FPS = 30
SUBSETS: dict[str, int] = {"CAP_DATA": 3, "DADA_2000": 3, "DoTA": 2, "MANUAL_DATA": 2}
#: (kind, style) of the videos, dealt to the subsets in a seeded order.
COMBOS = (
    ("crosswalk_hit", "street"),
    ("crosswalk_hit", "dusk"),
    ("jaywalk_hit", "street"),
    ("jaywalk_hit", "dusk"),
    ("jaywalk_hit", "campus"),
    ("cyclist_hit", "street"),
    ("cyclist_hit", "dusk"),
    ("cyclist_hit", "campus"),
    ("vehicle_on_sidewalk", "street"),
    ("vehicle_on_sidewalk", "dusk"),
)
QUESTIONS = {
    "weather and light": "What are the weather and lighting conditions?",
    "location": "In what kind of place does the accident happen?",
    "road type": "What kind of road is this?",
    "accident type": "What type of accident takes place?",
    "accident reason": "What caused the accident?",
    "prevention method": "What could have prevented this accident?",
}
SUFFIX = " Choose the correct option (A, B, C, or D) without any explanations."

#: Per category: correct phrasings by key, and wrong options that never fit a sample video.
TRUE: dict[str, dict[str, tuple[str, ...]]] = {
    "weather and light": {
        "day": ("clear day", "sunny day", "dry, bright daytime"),
        "dusk": ("clear evening at dusk", "dry evening twilight", "dusk with clear weather"),
    },
    "location": {
        "urban": ("urban", "city centre", "downtown street"),
        "campus": ("university campus", "campus grounds"),
    },
    "road type": {
        "street": ("two-lane urban street", "two-way city street with a zebra crossing"),
        "campus": ("campus road beside a row of parked cars", "quiet two-lane campus road"),
    },
    "accident type": {
        "crosswalk_hit": ("car hits a pedestrian on a zebra crossing",),
        "jaywalk_hit": ("car hits a pedestrian crossing away from any crossing",),
        "cyclist_hit": ("car hits a cyclist from behind",),
        "vehicle_on_sidewalk": ("car mounts the sidewalk and nearly runs over a pedestrian",),
    },
    "accident reason": {
        "crosswalk_hit": ("the driver did not give way to the pedestrian on the zebra crossing",),
        "jaywalk_hit": ("the pedestrian crossed away from the crossing without checking for cars",),
        "jaywalk_hit@campus": (
            "the pedestrian stepped out from between parked cars, hidden from the driver",
        ),
        "cyclist_hit": ("the driver did not notice the cyclist ahead and kept too close",),
        "vehicle_on_sidewalk": ("the driver lost control of the car and left the lane",),
    },
    "prevention method": {
        "crosswalk_hit": ("drivers should slow down and stop for people on zebra crossings",),
        "jaywalk_hit": ("pedestrians should cross at the zebra crossing after looking both ways",),
        "jaywalk_hit@campus": (
            "pedestrians should not step out between parked cars, and drivers should slow down "
            "beside them",
        ),
        "cyclist_hit": ("drivers should keep a safe distance and pass cyclists with room",),
        "vehicle_on_sidewalk": ("drivers should stay alert and keep the car in its lane",),
    },
}
WRONG: dict[str, tuple[str, ...]] = {
    "weather and light": (
        "rainy night",
        "snowy morning",
        "foggy afternoon",
        "stormy evening",
        "heavy rain at midday",
        "snowfall at night",
    ),
    "location": ("rural", "coastal", "mountainous", "desert", "industrial port"),
    "road type": (
        "multi-lane motorway",
        "unpaved dirt track",
        "narrow alley",
        "mountain pass",
        "highway on-ramp",
        "roundabout",
    ),
    "accident type": (
        "motorcycle skids on a wet road",
        "truck rear-ends a bus",
        "cyclist rides into a parked car",
        "pedestrian slips on an icy pavement",
        "scooter rider falls at a roundabout",
    ),
    "accident reason": (
        "the road was covered in ice",
        "a traffic light had failed",
        "a tyre burst on the car",
        "the cyclist ran a red light",
        "a truck's brakes failed",
    ),
    "prevention method": (
        "motorcyclists should wear reflective jackets",
        "trucks should be fitted with winter tyres",
        "bus drivers should check their mirrors at stops",
        "cyclists should avoid riding on motorways",
        "broken traffic lights should be repaired sooner",
    ),
}
#: Per kind: kinds whose true options are no safe distractors (they could be argued to fit too,
#: e.g. "the driver should stay alert" for any collision).
_CLASH = {k: ("vehicle_on_sidewalk",) for k in ("crosswalk_hit", "jaywalk_hit", "cyclist_hit")}


def plan(seed: int) -> list[VideoSpec]:
    did = dataset_id(DATASET)
    rng = np.random.default_rng([seed, did, 0])
    order = rng.permutation(len(COMBOS))
    specs = []
    index = 0
    for subset, count in SUBSETS.items():
        for n in range(1, count + 1):
            kind, style = COMBOS[int(order[index])]
            num_frames = int(rng.uniform(7.0, 9.5) * FPS)
            ev = place_one(kind, num_frames, FPS, rng, before_s=1.5, after_s=2.2)
            specs.append(
                VideoSpec(
                    f"VRU_videos/{subset}/VRU_{n}.mp4",
                    f"VRU_{n}",
                    "test",
                    kind,
                    kind,
                    num_frames,
                    FPS,
                    style,
                    (ev,),
                    (did, 0, index),
                )
            )
            index += 1
    return specs


def _keys(style: str, kind: str) -> dict[str, str]:
    """The true key of each category for a video."""
    special = f"{kind}@campus" if style == "campus" else kind
    return {
        "weather and light": "dusk" if style == "dusk" else "day",
        "location": "campus" if style == "campus" else "urban",
        "road type": "campus" if style == "campus" else "street",
        "accident type": kind,
        "accident reason": special if special in TRUE["accident reason"] else kind,
        "prevention method": special if special in TRUE["prevention method"] else kind,
    }


def vqa(ch: Chooser, style: str, kind: str) -> dict[str, dict[str, str]]:
    out = {}
    for cat, key in _keys(style, kind).items():
        clash = {key.split("@")[0], *_CLASH.get(kind, ())}
        pool = list(WRONG[cat]) + [
            t for k, texts in TRUE[cat].items() if k.split("@")[0] not in clash for t in texts
        ]
        if cat in ("weather and light", "location", "road type"):
            pool = list(WRONG[cat])  # the other styles' truths could also be argued for
        options, right = lang.mcq(ch, ch.pick(TRUE[cat][key]), pool)
        out[cat] = {
            "question": QUESTIONS[cat] + SUFFIX,
            "options": ", ".join(f"{lang.LETTERS[i]}. {o}" for i, o in enumerate(options)),
            "GT": lang.LETTERS[right],
        }
    return out


def caption(ch: Chooser, facts: VideoFacts) -> str:
    """A dense caption: scene, the road user, the car, the accident and what follows."""
    ev: EventFacts = facts.events[0]
    style, fps = facts.style, facts.fps
    victim_role = "pedestrian" if ev.kind == "vehicle_on_sidewalk" else "victim"
    victim, car = ev.roles[victim_role][0], ev.roles["car"][0]
    cyclist = ev.kind == "cyclist_hit"
    noun = "cyclist" if cyclist else "pedestrian"
    who = lang.actor(ch, victim, noun)
    vehicle = lang.actor(ch, car)
    lane = "far lane" if car.heading < 0 else "near lane"
    out = [
        lang.cap(f"{lang.lighting(ch, style)}, a fixed camera looks at {lang.place(ch, style)}."),
        lang.cap(lang.activity(ch, facts, others=True)) + ".",
    ]
    t_hit = (ev.start + round(IMPACT_S * fps)) / fps
    if ev.kind == "vehicle_on_sidewalk":
        out += [
            lang.cap(f"{who} walks along {lang.zone(ch, style, ev.zone)}."),
            f"At about {ev.start / fps:.1f} s, {vehicle} swerves out of its lane onto the "
            f"{'footpath' if style == 'campus' else 'sidewalk'} and races along it "
            f"{lang.direction(car.heading)}; the {noun} runs out of its way just in time.",
            f"The car leaves the frame at about {(ev.end + 1) / fps:.1f} s, still off the road.",
        ]
        return " ".join(out)
    if cyclist:
        bike = lang.BICYCLES[ev.roles["bicycle"][0].colour[0]]
        out.append(
            lang.cap(
                f"{who} rides {lang.article(bike)} bicycle {lang.direction(victim.heading)} "
                f"along the edge of the {lane}."
            )
        )
        out.append(lang.cap(f"{vehicle} comes up behind the cyclist in the same lane, faster."))
    else:
        start = lang.zone(ch, style, victim.zone_first) if victim.zone_first != "road" else ""
        how = {
            "crosswalk_hit": "on the zebra crossing",
            "jaywalk_hit": "between two parked cars, away from any crossing"
            if style == "campus"
            else "away from the zebra crossing",
        }[ev.kind]
        intro = f"{who} walks along {start} and" if start else f"{who}"
        out.append(lang.cap(f"{intro} starts to cross the road {how}."))
        out.append(
            lang.cap(
                f"{vehicle} approaches {lang.direction(car.heading)} in the {lane} "
                + ch.pick(("without slowing down.", "and does not brake in time."))
            )
        )
    out.append(
        f"At about {t_hit:.1f} s the car strikes the {noun}, who is thrown forward onto the road"
        + (" off the bicycle." if cyclist else ".")
    )
    out.append(
        ch.pick(
            (
                f"The car brakes hard and stops, hazard lights blinking, while the {noun} lies "
                "on the road, moving weakly.",
                f"The driver stops at once with the hazard lights on; the {noun} stays down on "
                "the road for a few seconds.",
            )
        )
    )
    if victim.last >= ev.end + 1 + round(0.7 * fps):
        out.append(f"At about {(ev.end + 1) / fps:.1f} s the {noun} gets up and leaves the road.")
    return " ".join(out)


def _dump(path: Path, doc: object) -> None:
    """JSON indented by 2 with CRLF line ends and a final CRLF, as in the original files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=2) + "\n"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))


def write_layout(root: Path, seed: int, specs: list[VideoSpec]) -> None:
    did = dataset_id(DATASET)
    for subset in SUBSETS:
        vqa_doc, cap_doc = {}, {}
        for i, spec in enumerate(specs):
            if spec.relpath.split("/")[1] != subset:
                continue
            facts = observe(spec, seed)
            key = f"./{spec.relpath}"
            vqa_doc[key] = vqa(Chooser(seed, did, 1, i), spec.style, spec.kind or "")
            cap_doc[key.removesuffix(".mp4")] = {"gt": caption(Chooser(seed, did, 2, i), facts)}
        _dump(root / "MetaData" / subset / f"{subset}_VQA_annotation.json", vqa_doc)
        _dump(root / "MetaData" / subset / f"{subset}_Dense_Caption.json", cap_doc)
