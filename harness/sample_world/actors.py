"""Actors (people, vehicles, objects) and effects (fire, flashes) as per-frame tracks.

Conventions: a video has ``T`` frames, indexed ``0 .. T-1``. Every track array has shape ``(T,)``.
Positions are in pixels of the rendered frame (x = column, y = row); a person's or vehicle's
position is its bottom centre (feet / wheels). Key-frame times may lie outside ``[0, T)``; such
actors are simply partly off the timeline. Effect intervals ``[start, end]`` are inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

#: A key frame ``(frame, x, y)``; the frame may be fractional or outside the video.
Key = tuple[float, float, float]

#: Walking speed of people (px/s); a person is ~14 px tall. Runners cross the 160 px frame in
#: about 2 s (60-90 px/s), speeds derived from their scripted interval.
WALK_SPEED = 16.0
#: Gait cycles per pixel travelled (one stride cycle every ~12 px).
GAIT_PER_PX = 1.0 / 12.0


class Pose(IntEnum):
    """Body pose of a person in one frame."""

    WALK = 0
    STAND = 1
    RUN = 2
    FLAIL = 3  # fighting / struggling: arms and legs thrown around
    LYING = 4  # body horizontal on the ground


@dataclass
class Actor:
    """Something drawn with a sprite, with a position per frame.

    Attributes:
        kind: ``person``, ``car``, ``bag``, ``package``, ``skateboard``, ``debris``, ``stone`` or
            ``bicycle``.
        x, y: ``(T,)`` float positions (bottom centre), pixels.
        visible: ``(T,)`` bool, drawn only where True.
        pose: ``(T,)`` int8 :class:`Pose` codes (people only).
        phase: ``(T,)`` float gait phase in cycles (people: limb positions; cars: unused).
        facing: ``(T,)`` int8, +1 = facing right, -1 = facing left.
        colour: palette indices; a person has 4 (hair, skin, shirt, pants), others 1.
        lights: cars only: headlights on.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray
    visible: np.ndarray
    pose: np.ndarray
    phase: np.ndarray
    facing: np.ndarray
    colour: tuple[int, ...] = (0,)
    lights: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.x.shape[0])

    def _span(self, start: int, end: int) -> slice:
        return slice(max(start, 0), min(end + 1, self.num_frames))

    def set_pose(self, start: int, end: int, pose: Pose) -> Actor:
        """Pose ``pose`` on frames ``start..end`` (inclusive, clipped to the video)."""
        self.pose[self._span(start, end)] = pose
        return self

    def set_facing(self, start: int, end: int, facing: int) -> Actor:
        self.facing[self._span(start, end)] = facing
        return self

    def jitter(
        self,
        start: int,
        end: int,
        amp_x: float,
        amp_y: float,
        rng: np.random.Generator,
        every: int = 1,
    ) -> Actor:
        """Add uniform random offsets (px) on ``start..end``, a new draw every ``every`` frames."""
        s = self._span(start, end)
        n = s.stop - s.start
        if n <= 0:
            return self
        k = (n + every - 1) // every
        dx = np.repeat(rng.uniform(-amp_x, amp_x, k), every)[:n]
        dy = np.repeat(rng.uniform(-amp_y, amp_y, k), every)[:n]
        self.x[s] += dx
        self.y[s] += dy
        return self

    def scramble_phase(
        self, start: int, end: int, rng: np.random.Generator, every: int = 1
    ) -> Actor:
        """Random limb positions on ``start..end`` (a new draw every ``every`` frames)."""
        s = self._span(start, end)
        n = s.stop - s.start
        if n > 0:
            k = (n + every - 1) // every
            self.phase[s] = np.repeat(rng.random(k), every)[:n]
        return self

    def struggle(self, start: int, end: int, rng: np.random.Generator) -> Actor:
        """Writhe on the ground on ``start..end``: limbs thrown around, the body jolts and now
        and then rolls over (facing flips)."""
        self.scramble_phase(start, end, rng).jitter(start, end, 2.0, 1.0, rng)
        s = self._span(start, end)
        n = s.stop - s.start
        if n > 0:
            flips = np.cumsum(rng.random(n) < 0.25) % 2
            self.facing[s] = np.where(flips == 1, -self.facing[s], self.facing[s])
        return self


@dataclass
class Effect:
    """A non-sprite visual effect on frames ``start..end`` (inclusive).

    Attributes:
        kind: ``fire`` (flickering flames, bottom centre at x, y; width ``size`` px),
            ``fireball`` (expanding/shrinking bright disk of max radius ``size``),
            ``flash`` (whole-frame brightening, strongest at ``start``, decaying),
            ``muzzle`` (small bright flash on each frame listed in ``frames``, plus a faint
            global brightening), ``blink`` (2x2 orange light blinking at ~2 Hz),
            ``smoke`` (grey puffs rising from x, y).
        scale: linear size factor of the drawn effect (1: the sizes above; ``size`` is already
            in pixels and is not scaled again). Smoke puffs, muzzle flashes and blinking
            lights are drawn ``scale`` times larger; the brightening of a muzzle flash is
            ``scale`` times stronger.
    """

    kind: str
    start: int
    end: int
    x: float = 0.0
    y: float = 0.0
    size: float = 8.0
    frames: tuple[int, ...] = field(default_factory=tuple)
    scale: float = 1.0


def _keys_to_tracks(
    num_frames: int, keys: Sequence[Key]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = np.array([k[0] for k in keys], dtype=np.float64)
    if np.any(np.diff(ts) < 0):
        raise ValueError(f"key frames must be sorted by time: {ts}")
    t = np.arange(num_frames, dtype=np.float64)
    x = np.interp(t, ts, [k[1] for k in keys])
    y = np.interp(t, ts, [k[2] for k in keys])
    visible = (t >= ts[0]) & (t <= ts[-1])
    return x, y, visible


def person(
    num_frames: int,
    keys: Sequence[Key],
    palette: tuple[int, ...],
    pose: Pose = Pose.WALK,
) -> Actor:
    """A person moving through key frames ``(frame, x, y)`` (linear in between).

    Visible from the first to the last key frame. Facing follows the direction of horizontal
    motion (kept while standing); gait phase follows the distance travelled. When the person
    stands still its pose becomes STAND unless ``pose`` says otherwise later (use
    :meth:`Actor.set_pose`).
    """
    x, y, visible = _keys_to_tracks(num_frames, keys)
    dx = np.diff(x, prepend=x[0])
    step = np.hypot(dx, np.diff(y, prepend=y[0]))
    phase = np.cumsum(step) * GAIT_PER_PX
    facing = np.sign(dx)
    first = keys[-1][1] - keys[0][1]
    facing[0] = facing[0] or (1 if first >= 0 else -1)
    for i in range(1, num_frames):  # hold the last direction while not moving horizontally
        if facing[i] == 0:
            facing[i] = facing[i - 1]
    poses = np.where(step > 1e-6, int(pose), int(Pose.STAND)).astype(np.int8)
    if pose is not Pose.WALK:
        poses[:] = pose
    return Actor("person", x, y, visible, poses, phase, facing.astype(np.int8), tuple(palette))


def thing(
    kind: str,
    num_frames: int,
    keys: Sequence[Key],
    colour: int = 0,
    lights: bool = False,
) -> Actor:
    """A vehicle or object moving through key frames ``(frame, x, y)``; facing from motion."""
    x, y, visible = _keys_to_tracks(num_frames, keys)
    dx = np.diff(x, prepend=x[0])
    facing = np.sign(dx)
    facing[0] = facing[0] or (1 if keys[-1][1] >= keys[0][1] else -1)
    for i in range(1, num_frames):
        if facing[i] == 0:
            facing[i] = facing[i - 1]
    zeros = np.zeros(num_frames)
    return Actor(
        kind,
        x,
        y,
        visible,
        zeros.astype(np.int8),
        zeros,
        facing.astype(np.int8),
        (colour,),
        lights,
    )
