"""Frame rendering: background + sprites + effects + lighting drift + sensor noise.

:func:`render` yields ``T`` frames of shape ``(HEIGHT, WIDTH, 3)``, uint8 RGB, in order. All
randomness (noise, flame flicker) comes from the ``rng`` passed in and is consumed in frame order,
so the same inputs give the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from harness.sample_world.actors import Actor, Effect, Pose
from harness.sample_world.scene import HEIGHT, WIDTH, Scene
from harness.sample_world.sprites import PHASES, Sprite, car_sprite, object_sprite, person_sprite

#: Standard deviation (grey levels) of the per-frame sensor noise.
NOISE_SIGMA = 2.0
#: Amplitude (grey levels) of the slow global lighting drift.
DRIFT_AMPLITUDE = 3.0
_PAD = 16

_YY, _XX = np.mgrid[:HEIGHT, :WIDTH]


def _sprite(actor: Actor, t: int) -> Sprite:
    if actor.kind == "person":
        pose = Pose(int(actor.pose[t]))
        bucket = int(actor.phase[t] * PHASES) % PHASES
        pal = actor.colour
        return person_sprite(pose, bucket, int(actor.facing[t]), (pal[0], pal[1], pal[2], pal[3]))
    if actor.kind == "car":
        return car_sprite(actor.colour[0], int(actor.facing[t]), actor.lights)
    return object_sprite(actor.kind, actor.colour[0])


def blit(canvas: np.ndarray, sprite: Sprite, x: float, y: float) -> None:
    """Draw ``sprite`` with its anchor at ``(x, y)`` (rounded), clipped to the canvas."""
    rgb, mask, (ar, ac) = sprite
    r0, c0 = int(round(y)) - ar, int(round(x)) - ac
    h, w = mask.shape
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + h, canvas.shape[0]), min(c0 + w, canvas.shape[1])
    if rr0 >= rr1 or cc0 >= cc1:
        return
    sr, sc = slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0)
    np.copyto(canvas[rr0:rr1, cc0:cc1], rgb[sr, sc], where=mask[sr, sc, None])


def _blend(region: np.ndarray, colour: tuple[int, int, int], alpha: np.ndarray | float) -> None:
    """``region += alpha * (colour - region)`` in place (int16 region; alpha broadcastable)."""
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    target = np.asarray(colour, dtype=np.float32)
    region += (a * (target - region)).astype(np.int16)


def _fire(canvas: np.ndarray, fx: Effect, t: int, rng: np.random.Generator) -> None:
    ramp = min(1.0, (t - fx.start + 1) / 8.0, (fx.end - t + 1) / 4.0)
    w = max(int(fx.size), 3)
    h = int(fx.size * 1.6)
    x0, y1 = int(fx.x) - w // 2, int(fx.y)
    heights = (rng.uniform(0.35, 1.0, w) * h * ramp).astype(int)
    rows = np.arange(h)[:, None]
    mask = rows >= (h - heights)[None, :]  # flames grow upwards from the bottom row
    hot = rng.random((h, w)) < 0.45
    r0 = y1 - h + 1
    region = canvas[max(r0, 0) : y1 + 1, max(x0, 0) : x0 + w]
    m = mask[h - region.shape[0] :, max(-x0, 0) : max(-x0, 0) + region.shape[1]]
    hh = hot[h - region.shape[0] :, max(-x0, 0) : max(-x0, 0) + region.shape[1]]
    region[m & hh] = (255, 225, 90)
    region[m & ~hh] = (245, 120, 25)
    glow = np.exp(-((_YY - (y1 - h / 2)) ** 2 + (_XX - fx.x) ** 2) / (2 * (1.5 * w) ** 2))
    canvas += (glow[..., None] * np.array([40, 22, 0]) * ramp * rng.uniform(0.6, 1.0)).astype(
        np.int16
    )


def _fireball(canvas: np.ndarray, fx: Effect, t: int) -> None:
    k = t - fx.start
    grow = 6
    r = (
        fx.size * (k + 1) / grow
        if k < grow
        else fx.size * max(0.0, 1 - (k - grow) / (fx.end - fx.start - grow + 1))
    )
    if r < 1:
        return
    d2 = (_YY - fx.y) ** 2 + (_XX - fx.x) ** 2
    _blend(canvas, (250, 130, 30), (d2 <= r * r) * 0.9)
    _blend(canvas, (255, 240, 170), (d2 <= (0.55 * r) ** 2) * 0.9)


def _smoke(canvas: np.ndarray, fx: Effect, t: int) -> None:
    k = t - fx.start
    g = fx.scale
    for i in range(4):
        age = (k + i * 9) % 36
        cy = fx.y - age * 0.8 * g
        cx = fx.x + (np.sin((k + i * 7) / 6.0) * 3 + (i - 1.5) * 2) * g
        r = (2 + age * 0.18) * g
        sl = (
            slice(max(int(cy - r), 0), max(int(cy + r) + 1, 0)),
            slice(max(int(cx - r), 0), max(int(cx + r) + 1, 0)),
        )
        region = canvas[sl]
        if region.size:
            _blend(region, (60, 60, 62), 0.45 * (1 - age / 36))


def _box(canvas: np.ndarray, fx: Effect, half_h: int, half_w: int,
         colour: tuple[int, int, int]) -> None:
    """A solid box centred on ``(fx.x, fx.y)``: ``2 half_h + 1`` by ``2 half_w + 1`` pixels at
    scale 1, each half-extent multiplied by ``fx.scale`` (rounded)."""
    r, c = int(fx.y), int(fx.x)
    hh, hw = int(round(half_h * fx.scale)), int(round(half_w * fx.scale))
    canvas[max(r - hh, 0) : r + hh + 1, max(c - hw, 0) : c + hw + 1] = colour


def _effects(
    canvas: np.ndarray, effects: list[Effect], t: int, fps: int, rng: np.random.Generator
) -> None:
    for fx in effects:
        if not fx.start <= t <= fx.end:
            continue
        if fx.kind == "fire":
            _fire(canvas, fx, t, rng)
        elif fx.kind == "fireball":
            _fireball(canvas, fx, t)
        elif fx.kind == "smoke":
            _smoke(canvas, fx, t)
        elif fx.kind == "flash":
            a = 0.85 * 0.6 ** (t - fx.start)
            _blend(canvas, (255, 235, 190), a)
        elif fx.kind == "muzzle" and t in fx.frames:
            _box(canvas, fx, 1, 2, (255, 250, 200))
            canvas += int(round(8 * fx.scale))
        elif fx.kind == "blink" and ((t - fx.start) * 4 // fps) % 2 == 0:
            _box(canvas, fx, 1, 1, (255, 160, 20))
        elif fx.kind not in ("muzzle", "blink"):
            raise ValueError(f"unknown effect {fx.kind!r}")


def render(
    scene: Scene,
    actors: list[Actor],
    effects: list[Effect],
    num_frames: int,
    rng: np.random.Generator,
) -> Iterator[np.ndarray]:
    """Yield the ``num_frames`` frames of a video, ``(HEIGHT, WIDTH, 3)`` uint8 RGB each."""
    bg = scene.background.astype(np.int16)
    noise = rng.normal(0.0, NOISE_SIGMA, (HEIGHT + _PAD, WIDTH + _PAD)).astype(np.float32)
    period = rng.uniform(6.0, 14.0) * scene.fps
    phase0 = rng.uniform(0, 2 * np.pi)
    drift = DRIFT_AMPLITUDE * np.sin(phase0 + 2 * np.pi * np.arange(num_frames) / period)
    order = sorted(range(len(actors)), key=lambda i: actors[i].kind != "car")
    for t in range(num_frames):
        canvas = bg.copy()
        live = [actors[i] for i in order if actors[i].visible[t]]
        live.sort(key=lambda a: float(a.y[t]))
        for actor in live:
            blit(canvas, _sprite(actor, t), float(actor.x[t]), float(actor.y[t]))
        _effects(canvas, effects, t, scene.fps, rng)
        dy, dx = rng.integers(0, _PAD + 1, size=2)
        # drift is added before rounding, so it dithers smoothly instead of stepping
        grain = np.rint(noise[dy : dy + HEIGHT, dx : dx + WIDTH] + np.float32(drift[t]))
        canvas += grain.astype(np.int16)[..., None]
        np.clip(canvas, 0, 255, out=canvas)
        yield canvas.astype(np.uint8)
