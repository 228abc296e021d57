"""Text building blocks of the language datasets, written from :class:`~.observe.VideoFacts`.

Every sentence is a template filled with facts read off the staged video (who is involved, in
what colours, where, which way they move), so the text describes what the rendered video shows.
Variety comes from :class:`Chooser`, a random stream keyed by the seed and the item; the same seed
always gives the same text. Per-kind templates are in ``phrases.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from harness.sample_world.observe import ActorFacts, EventFacts, VideoFacts

T = TypeVar("T")

SHIRTS = ("red", "blue", "green", "yellow", "purple", "white", "black", "orange", "light blue")
PANTS = ("navy", "black", "brown", "grey", "khaki")
CARS = ("red", "blue", "grey", "green", "brown", "dark grey", "beige", "steel-blue")
BICYCLES = ("blue", "red", "white")
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

#: Per style: zone -> (noun phrases, prepositional phrases).
ZONE_TEXT: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "street": {
        "far_walk": (
            ("the far sidewalk", "the sidewalk along the building", "the upper sidewalk"),
            ("on the far sidewalk", "on the sidewalk in front of the building"),
        ),
        "road": (("the road", "the roadway"), ("on the road", "on the roadway")),
        "near_walk": (
            ("the near sidewalk", "the sidewalk closest to the camera", "the lower sidewalk"),
            ("on the near sidewalk", "on the sidewalk closest to the camera"),
        ),
        "verge": (("the grass verge",), ("on the grass verge",)),
    },
    "campus": {
        "far_walk": (
            ("the footpath in front of the building", "the upper footpath"),
            ("on the footpath in front of the building", "on the upper footpath"),
        ),
        "road": (("the campus road",), ("on the campus road",)),
        "parking": (("the row of parked cars",), ("beside the row of parked cars",)),
        "near_walk": (
            ("the lower footpath", "the footpath nearest the camera"),
            ("on the lower footpath", "on the footpath nearest the camera"),
        ),
        "lawn": (("the lawn",), ("on the lawn",)),
    },
}
ZONE_TEXT["dusk"] = ZONE_TEXT["street"]

_BAND = {"upper": "top", "middle": "middle", "lower": "bottom"}


class Chooser:
    """Deterministic choices for the texts of one item (random stream ``[seed, *key]``)."""

    def __init__(self, seed: int, *key: int) -> None:
        self.rng = np.random.default_rng([seed, *key])

    def pick(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]

    def sample(self, options: Sequence[T], k: int) -> list[T]:
        return [options[int(i)] for i in self.rng.choice(len(options), size=k, replace=False)]

    def shuffled(self, items: Sequence[T]) -> list[T]:
        return [items[int(i)] for i in self.rng.permutation(len(items))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)


def article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def number(n: int) -> str:
    return NUMBERS[n] if 0 <= n < len(NUMBERS) else str(n)


def direction(heading: int) -> str:
    return {1: "to the right", -1: "to the left"}.get(heading, "on the spot")


def actor(ch: Chooser, f: ActorFacts, noun: str = "person") -> str:
    """A noun phrase for an actor: ``a person in a red shirt``, ``a grey car``..."""
    if f.kind == "person":
        shirt, pants = SHIRTS[f.colour[2]], PANTS[f.colour[3]]
        return ch.pick(
            (
                f"{article(noun)} in {article(shirt)} shirt",
                f"{article(noun)} in {article(shirt)} top and {pants} trousers",
                f"{article(noun)} wearing {article(shirt)} shirt and {pants} trousers",
            )
        )
    if f.kind == "car":
        return f"{article(CARS[f.colour[0]])} car"
    if f.kind == "bicycle":
        return f"{article(BICYCLES[f.colour[0]])} bicycle"
    return article(f.kind)


def zone(ch: Chooser, style: str, name: str) -> str:
    return ch.pick(ZONE_TEXT[style][name][0])


def zone_at(ch: Chooser, style: str, name: str) -> str:
    return ch.pick(ZONE_TEXT[style][name][1])


def region(band: str, side: str) -> str:
    """``the bottom-left part of the frame``, ``the centre of the frame``..."""
    if side == "centre":
        return (
            "the centre of the frame"
            if band == "middle"
            else f"the {_BAND[band]} centre of the frame"
        )
    if band == "middle":
        return f"the {side}-hand side of the frame"
    return f"the {_BAND[band]}-{side} part of the frame"


def fill(ch: Chooser, template: str, style: str, ev: EventFacts) -> str:
    """Fill a per-kind template: ``{role}``, ``{role2}`` (second actor of a role),
    ``{role_dir}`` (its heading), ``{zone}``, ``{at}``, ``{region}``."""
    values: dict[str, str] = {
        "zone": zone(ch, style, ev.zone),
        "at": zone_at(ch, style, ev.zone),
        "region": region(ev.band, ev.side),
    }
    for role, group in ev.roles.items():
        noun = {"victim": "pedestrian", "pedestrian": "pedestrian"}.get(role, "person")
        seen: list[int] = []
        for i, f in enumerate(group[:2]):
            key = role if i == 0 else f"{role}{i + 1}"
            text = actor(ch, f, noun)
            look = f.colour[2] if f.kind == "person" else f.colour[0]
            if look in seen:  # looks like the previous one: "another ..."
                text = "another " + text.split(" ", 1)[1]
            seen.append(look)
            values[key] = text
            values[f"{key}_dir"] = direction(f.heading)
    return template.format(**values)


def lighting(ch: Chooser, style: str) -> str:
    return ch.pick(
        {
            "street": ("in broad daylight", "on a clear, bright day", "in daylight"),
            "dusk": ("at dusk", "in the evening twilight", "as dusk falls"),
            "campus": ("on a sunny day", "in daylight", "on a clear day"),
        }[style]
    )


def place(ch: Chooser, style: str) -> str:
    """What the fixed camera looks at."""
    if style == "campus":
        return ch.pick(
            (
                "a campus plaza with a brick building, a footpath in front of it, a campus road, "
                "a row of parked cars, a second footpath and a lawn with trees",
                "a university campus: footpaths on either side of a quiet campus road, parked "
                "cars along it, a brick building behind and a lawn with trees in front",
            )
        )
    lit = " with lit windows" if style == "dusk" else ""
    return ch.pick(
        (
            f"a city street: a building{lit} behind a sidewalk, a two-lane road with a zebra "
            "crossing, a second sidewalk and a grass verge with trees and a bench",
            f"an urban street with a two-lane, two-way road and a zebra crossing between two "
            f"sidewalks, a building{lit} at the back and trees and a bench at the front",
        )
    )


def activity(ch: Chooser, facts: VideoFacts, others: bool = False) -> str:
    """Ordinary activity: how many people walk by or cross, how many cars pass and which way
    (``others``: the scripted actors are described separately, say "other")."""
    people = [a for a in facts.background if a.kind == "person"]
    crossing = sum(1 for a in people if a.zone == "road")
    walking, cars = len(people) - crossing, facts.count("car")
    heads = {a.heading for a in facts.background if a.kind == "car" and a.heading}
    way = "in both directions" if len(heads) == 2 else direction(next(iter(heads), 0))
    lights = " with their headlights on" if facts.style == "dusk" else ""
    paths = "footpaths" if facts.style == "campus" else "sidewalks"
    walk = (
        ch.pick(
            (
                f"{number(walking)} people walk along the {paths} at an ordinary pace",
                f"{number(walking)} pedestrians stroll along the {paths}",
            )
        )
        if walking
        else "nobody walks along the " + paths
    )
    if crossing:
        walk += f", {number(crossing)} cross{'es' if crossing == 1 else ''} at the zebra crossing"
    other = "other " if others else ""
    if cars == 0:
        return f"{walk}, and no {other}cars pass"
    drive = f"{number(cars)} {other}car{'s' if cars > 1 else ''} drive{'s' if cars == 1 else ''}"
    return f"{walk}, and {drive} past {way}{lights}"


def mcq(ch: Chooser, correct: str, distractors: Sequence[str], k: int = 3) -> tuple[list[str], int]:
    """``k`` distractors (distinct, not the correct one) and the correct option, shuffled; returns
    the options and the correct one's index."""
    pool = list(dict.fromkeys(d for d in distractors if d != correct))
    options = [correct, *ch.sample(pool, k)]
    order = ch.shuffled(range(len(options)))
    return [options[i] for i in order], order.index(0)


LETTERS = "ABCD"


def words(text: str) -> int:
    return len(text.split())
