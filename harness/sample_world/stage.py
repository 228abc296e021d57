"""Anomaly events and the stage they are scripted on.

An :class:`AnomalyEvent` says *what* happens and *when*: frames ``start..end``, 0-based, ``end``
inclusive. A script (registered with :func:`script`, see ``events.py`` and ``hazards.py``) adds
the actors and effects that make it happen exactly then: the abnormal behaviour begins at
``start`` and is over (or out of view) after ``end``. Actors may be on screen before and after,
behaving normally (walking in with the flow, driving in their lane).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.sample_world.actors import Actor, Effect, Key
from harness.sample_world.scene import WIDTH, Scene, Walkway
from harness.sample_world.sprites import random_palette

#: x just off-screen for people/objects entering or leaving (px beyond the frame edge).
OFF = 9.0


@dataclass(frozen=True)
class AnomalyEvent:
    """An anomaly of ``kind`` on frames ``start..end`` (0-based, ``end`` inclusive)."""

    kind: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"bad interval {self.start}..{self.end} for {self.kind}")


@dataclass(frozen=True)
class Timing:
    """Allowed duration (seconds) of a kind; ``until_end``: the interval runs to the last frame."""

    min_s: float
    max_s: float
    until_end: bool = False


@dataclass
class Stage:
    """Scene, clock and random stream of one video, collecting actors and effects.

    Scripts may name the actors they add (``add(actor, "victim")``): the texts of the language
    datasets are written from these roles (see ``observe.py``). ``roles`` holds the roles of the
    script being run (reset before each one); naming an actor draws no random numbers, so the
    frames do not depend on it. ``clear`` lists ``(y0, y1, t0, t1)`` zones from which ordinary
    background traffic is removed (feet rows ``y0..y1`` while in view on frames ``t0..t1``), e.g.
    so that no car drives through a scripted accident.
    """

    scene: Scene
    num_frames: int
    rng: np.random.Generator
    actors: list[Actor] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    roles: dict[str, list[Actor]] = field(default_factory=dict)
    clear: list[tuple[float, float, int, int]] = field(default_factory=list)

    @property
    def fps(self) -> int:
        return self.scene.fps

    def s(self, seconds: float) -> int:
        """Seconds to a whole number of frames."""
        return int(round(seconds * self.fps))

    def way(self) -> Walkway:
        return self.scene.walkways[int(self.rng.integers(len(self.scene.walkways)))]

    def feet(self, way: Walkway) -> float:
        return float(self.rng.integers(way.top + 1, way.bottom))

    def palette(self) -> tuple[int, int, int, int]:
        return random_palette(self.rng)

    def add(self, actor: Actor, role: str | None = None) -> Actor:
        self.actors.append(actor)
        if role is not None:
            self.roles.setdefault(role, []).append(actor)
        return actor

    def keep_clear(self, y0: float, y1: float, t0: int, t1: int) -> None:
        """Remove background actors with feet rows in ``y0..y1`` while in view on ``t0..t1``."""
        self.clear.append((y0, y1, t0, t1))

    def effect(self, fx: Effect) -> None:
        self.effects.append(fx)

    @staticmethod
    def edge(direction: int, off: float = OFF) -> float:
        """x of the frame edge a mover heading in ``direction`` (+1 right) leaves through."""
        return WIDTH - 1 + off if direction > 0 else -off

    def walk_in(self, direction: int, x: float, y: float, t: float, speed: float) -> list[Key]:
        """Keys entering from the upstream edge at ``speed`` px/s to reach ``(x, y)`` at ``t``."""
        x0 = self.edge(-direction)
        return [(t - abs(x - x0) / speed * self.fps, x0, y), (t, x, y)]

    def walk_out(self, direction: int, x: float, y: float, t: float, speed: float) -> list[Key]:
        """Keys leaving from ``(x, y)`` at ``t`` towards ``direction`` at ``speed`` px/s."""
        x1 = self.edge(direction)
        return [(t, x, y), (t + abs(x1 - x) / speed * self.fps, x1, y)]

    def flee(self, x: float, y: float, t0: float, t1: float, direction: int = 0) -> list[Key]:
        """Keys running from ``(x, y)`` at ``t0`` to be off-screen at ``t1`` (nearest edge if
        ``direction`` is 0)."""
        if direction == 0:
            direction = 1 if x > WIDTH / 2 else -1
        return [(t0, x, y), (t1, self.edge(direction), y + self.rng.uniform(-2, 2))]


Script = Callable[[AnomalyEvent, Stage], None]
SCRIPTS: dict[str, Script] = {}
TIMINGS: dict[str, Timing] = {}


def script(kind: str, timing: Timing) -> Callable[[Script], Script]:
    """Register the script of an anomaly ``kind`` with its allowed duration."""

    def deco(fn: Script) -> Script:
        if kind in SCRIPTS:
            raise ValueError(f"anomaly kind {kind!r} registered twice")
        SCRIPTS[kind] = fn
        TIMINGS[kind] = timing
        return fn

    return deco
