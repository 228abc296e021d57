"""Staging a video without rendering it, and the facts that its texts are written from.

:func:`staged` performs exactly the set-up that :func:`~harness.sample_world.generate.frames`
renders (same random stream, consumed in the same order), so whatever :func:`observe` reads off
it is what the rendered video shows. :class:`VideoFacts` holds the scene style, the ordinary
people and vehicles that come into view, and per anomaly event the actors of each role (see
:class:`~harness.sample_world.stage.Stage`), where in the frame the event happens and on which
part of the scene (its zone). Frames are 0-based with inclusive ends; "in view" means the actor is
drawn and its anchor (feet / wheels) lies inside the frame.

Zones by feet row: street and dusk: ``far_walk`` (upper sidewalk, rows <= 46), ``road``
(47-83), ``near_walk`` (lower sidewalk, 84-101), ``verge``; campus: ``far_walk`` (<= 48),
``road`` (49-70), ``parking`` (the parked row, 71-88), ``near_walk`` (89-104), ``lawn``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.sample_world.actors import Actor, Effect
from harness.sample_world.catalog import VideoSpec
from harness.sample_world.scene import WIDTH, Scene, build_scene
from harness.sample_world.stage import SCRIPTS, AnomalyEvent, Stage
from harness.sample_world.traffic import normal_activity

_STREET = ((46, "far_walk"), (83, "road"), (101, "near_walk"), (10**6, "verge"))
ZONES: dict[str, tuple[tuple[int, str], ...]] = {
    "street": _STREET,
    "dusk": _STREET,
    "campus": (
        (48, "far_walk"),
        (70, "road"),
        (88, "parking"),
        (104, "near_walk"),
        (10**6, "lawn"),
    ),
}
#: Roles that do not locate an event (they run off in all directions).
_MINOR_ROLES = ("bystander",)


def zone_of(style: str, y: float) -> str:
    return next(name for last, name in ZONES[style] if y <= last)


def side_of(x: float) -> str:
    """Third of the frame width: ``left``, ``centre`` or ``right``."""
    return "left" if x < WIDTH / 3 else "centre" if x < 2 * WIDTH / 3 else "right"


def band_of(y: float) -> str:
    """Third of the frame height (image rows): ``upper``, ``middle`` or ``lower``."""
    return "upper" if y < 40 else "middle" if y < 80 else "lower"


@dataclass
class Staged:
    """A video set up for rendering: background actors (after ``Stage.clear``), the scripted
    actors and effects, the random stream as the renderer continues it, and per event the
    actors, effects and roles its script added."""

    scene: Scene
    stage: Stage
    background: list[Actor]
    rng: np.random.Generator
    events: list[tuple[AnomalyEvent, list[Actor], list[Effect], dict[str, list[Actor]]]]

    @property
    def actors(self) -> list[Actor]:
        return self.background + self.stage.actors


def _in_view(a: Actor) -> np.ndarray:
    return a.visible & (a.x >= 0) & (a.x < WIDTH)


def _cleared(actors: list[Actor], clear: list[tuple[float, float, int, int]]) -> list[Actor]:
    def blocked(a: Actor) -> bool:
        view = _in_view(a)
        for y0, y1, t0, t1 in clear:
            s = slice(max(t0, 0), max(t1 + 1, 0))
            if np.any(view[s] & (a.y[s] >= y0) & (a.y[s] <= y1)):
                return True
        return False

    return [a for a in actors if not blocked(a)] if clear else actors


def staged(spec: VideoSpec, seed: int) -> Staged:
    """Set up the video of ``spec`` (no rendering)."""
    rng = np.random.default_rng([seed, *spec.key])
    scene = build_scene(spec.style, spec.fps, rng)
    stage = Stage(scene, spec.num_frames, rng)
    background = normal_activity(scene, spec.num_frames, rng)
    per_event = []
    for ev in spec.events:
        a0, e0 = len(stage.actors), len(stage.effects)
        stage.roles = {}
        SCRIPTS[ev.kind](ev, stage)
        if spec.effect_scale != 1.0:
            stage.effects[e0:] = [replace(fx, size=fx.size * spec.effect_scale,
                                          scale=fx.scale * spec.effect_scale)
                                  for fx in stage.effects[e0:]]
        per_event.append((ev, stage.actors[a0:], stage.effects[e0:], stage.roles))
    return Staged(scene, stage, _cleared(background, stage.clear), rng, per_event)


@dataclass(frozen=True)
class ActorFacts:
    """One actor as seen in a window of frames.

    Attributes:
        kind: actor kind (``person``, ``car``, ``bicycle``...).
        colour: palette indices (person: hair, skin, shirt, pants; others: one index).
        first, last: first / last frame in view in the whole video (-1 if never in view).
        heading: +1 moving right, -1 left, 0 hardly moving horizontally (in the window).
        zone, side: where it is in the window (median position); ``zone_first``: where it is
            when first in view.
    """

    kind: str
    colour: tuple[int, ...]
    first: int
    last: int
    heading: int
    zone: str
    side: str
    zone_first: str


@dataclass(frozen=True)
class EventFacts:
    """An anomaly event: its roles' actors, where it happens (``x``, ``y`` image position,
    ``zone``, ``side`` and ``band``) and its frames ``start..end``."""

    kind: str
    start: int
    end: int
    roles: dict[str, tuple[ActorFacts, ...]]
    x: float
    y: float
    zone: str
    side: str
    band: str


@dataclass(frozen=True)
class VideoFacts:
    style: str
    fps: int
    num_frames: int
    background: tuple[ActorFacts, ...]
    events: tuple[EventFacts, ...]

    def count(self, kind: str) -> int:
        """Background actors of ``kind`` that come into view."""
        return sum(1 for a in self.background if a.kind == kind and a.first >= 0)


def actor_facts(style: str, a: Actor, t0: int, t1: int) -> ActorFacts:
    """Facts of ``a`` in the window ``t0..t1`` (the whole video where it is not in view then)."""
    view = _in_view(a)
    frames = np.flatnonzero(view)
    first, last = (int(frames[0]), int(frames[-1])) if frames.size else (-1, -1)
    win = frames[(frames >= t0) & (frames <= t1)]
    if win.size == 0:
        win = frames if frames.size else np.arange(a.num_frames)
    dx = float(a.x[win[-1]] - a.x[win[0]])
    heading = 0 if abs(dx) < 4 else (1 if dx > 0 else -1)
    mid = int(win[len(win) // 2])
    return ActorFacts(
        a.kind,
        tuple(int(c) for c in a.colour),
        first,
        last,
        heading,
        zone_of(style, float(a.y[mid])),
        side_of(float(a.x[mid])),
        zone_of(style, float(a.y[first if first >= 0 else mid])),
    )


def _locate(
    ev: AnomalyEvent, actors: list[Actor], effects: list[Effect], roles: dict[str, list[Actor]]
) -> tuple[float, float]:
    """Image position of an event: its fire / fireball if it has one, else the mean position of
    its main actors while in view during the event (or just before it, for someone who
    vanishes)."""
    sited = [fx for fx in effects if fx.kind in ("fire", "fireball")]
    if sited:
        return float(np.mean([fx.x for fx in sited])), float(np.mean([fx.y for fx in sited]))
    main = [a for r, group in roles.items() if r not in _MINOR_ROLES for a in group] or actors
    for lo, hi in ((ev.start, ev.end), (0, ev.start - 1), (ev.end + 1, 10**9)):
        xs, ys = [], []
        for a in main:
            sel = np.flatnonzero(_in_view(a))
            sel = sel[(sel >= lo) & (sel <= hi)]
            if lo == 0:
                sel = sel[-1:]
            xs += a.x[sel].tolist()
            ys += a.y[sel].tolist()
        if xs:
            return float(np.mean(xs)), float(np.mean(ys))
    return WIDTH / 2, 60.0


def observe(spec: VideoSpec, seed: int) -> VideoFacts:
    """The facts of the video of ``spec`` (deterministic; no rendering)."""
    st = staged(spec, seed)
    style, n = spec.style, spec.num_frames
    events = []
    for ev, actors, effects, roles in st.events:
        x, y = _locate(ev, actors, effects, roles)
        facts = {
            r: tuple(actor_facts(style, a, ev.start, ev.end) for a in group)
            for r, group in roles.items()
        }
        events.append(
            EventFacts(
                ev.kind, ev.start, ev.end, facts, x, y, zone_of(style, y), side_of(x), band_of(y)
            )
        )
    background = tuple(
        f for f in (actor_facts(style, a, 0, n - 1) for a in st.background) if f.first >= 0
    )
    return VideoFacts(style, spec.fps, n, background, tuple(events))
