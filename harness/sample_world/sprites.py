"""Pixel sprites: people, cars and small objects, built once and cached.

A sprite is ``(rgb, mask, anchor)``: ``rgb`` is ``(h, w, 3)`` uint8, ``mask`` is ``(h, w)`` bool
(True = opaque) and ``anchor = (row, col)`` is the sprite pixel that lands on the actor's
position. People and vehicles are anchored at the bottom centre (feet / wheels), so an actor's
``y`` is the image row it stands on and sorting by ``y`` gives a plausible drawing order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.sample_world.actors import Pose

RGB = tuple[int, int, int]
Sprite = tuple[np.ndarray, np.ndarray, tuple[int, int]]

#: Person palettes are ``(hair, skin, shirt, pants)``; indices into these tables.
HAIR: tuple[RGB, ...] = ((30, 24, 20), (70, 45, 25), (120, 90, 50), (160, 160, 160))
SKIN: tuple[RGB, ...] = ((233, 190, 150), (200, 150, 105), (150, 100, 65), (105, 70, 45))
SHIRT: tuple[RGB, ...] = (
    (200, 60, 50),
    (50, 90, 170),
    (60, 140, 80),
    (210, 190, 70),
    (140, 70, 150),
    (220, 220, 215),
    (40, 40, 45),
    (230, 130, 40),
    (90, 170, 190),
)
PANTS: tuple[RGB, ...] = ((40, 45, 70), (30, 30, 30), (90, 80, 60), (70, 70, 80), (120, 110, 90))
#: Car body colours, kept within ~30 grey levels of the asphalt: ordinary traffic should move
#: visibly without dominating the frame difference.
CAR: tuple[RGB, ...] = (
    (150, 45, 45),
    (50, 70, 125),
    (110, 110, 115),
    (65, 100, 65),
    (125, 95, 65),
    (90, 90, 98),
    (140, 120, 95),
    (60, 85, 110),
)

#: Gait phase buckets per cycle (limb positions are quantised to these).
PHASES = 8

# Labels used while drawing a person, mapped to palette entries at colouring time.
_HAIR, _SKIN, _SHIRT, _PANTS = 1, 2, 3, 4

# Hand offsets (d_row, d_col) from the shoulder for flailing arms, one pair per phase bucket.
_FLAIL_ARMS = (
    ((-4, 3), (1, -4)),
    ((0, 5), (-3, -3)),
    ((-5, 1), (-1, -5)),
    ((2, 4), (-4, -2)),
    ((-3, 5), (0, -5)),
    ((-5, -2), (2, 3)),
    ((1, 5), (-5, 0)),
    ((-2, -4), (-4, 4)),
)


def _seg(grid: np.ndarray, r0: int, c0: int, r1: int, c1: int, label: int) -> None:
    """Draw a 1-px segment from (r0, c0) to (r1, c1), both ends included, clipped to the grid."""
    n = max(abs(r1 - r0), abs(c1 - c0)) + 1
    rows = np.rint(np.linspace(r0, r1, n)).astype(int)
    cols = np.rint(np.linspace(c0, c1, n)).astype(int)
    ok = (rows >= 0) & (rows < grid.shape[0]) & (cols >= 0) & (cols < grid.shape[1])
    grid[rows[ok], cols[ok]] = label


def _colour(grid: np.ndarray, colours: dict[int, RGB]) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.zeros((*grid.shape, 3), dtype=np.uint8)
    for label, colour in colours.items():
        rgb[grid == label] = colour
    return rgb, grid > 0


def _upright(pose: Pose, bucket: int) -> np.ndarray:
    """Label grid (15, 13) of a standing/walking/running/flailing person facing right.

    Feet on row 14, body centred on column 6; 14 px tall overall.
    """
    g = np.zeros((15, 13), dtype=np.uint8)
    lean = 1 if pose is Pose.RUN else 0
    s = np.sin(2 * np.pi * bucket / PHASES)
    g[1, 5 + lean : 8 + lean] = _HAIR
    g[2:4, 5 + lean : 8 + lean] = _SKIN
    g[4:9, 5:8] = _SHIRT
    if lean:
        g[4:6, 8] = _SHIRT
    g[9, 5:8] = _PANTS
    if pose is Pose.STAND:
        legs = (-1, 1)
        hands = ((5, -1), (5, 1))
    elif pose is Pose.FLAIL:
        legs = ((bucket % 3) - 2, (bucket * 5 % 3))
        hands = _FLAIL_ARMS[bucket % len(_FLAIL_ARMS)]
    else:
        amp = 3.2 if pose is Pose.RUN else 2.0
        d = int(np.rint(amp * s))
        legs = (-d, d)
        ha = int(np.rint((2.5 if pose is Pose.RUN else 1.5) * s))
        hands = ((4, ha), (4, -ha))
    for dc in legs:
        _seg(g, 10, 6, 14, 6 + dc, _PANTS)
    for side, (dr, dc) in zip((-1, 1), hands, strict=True):
        c0 = 6 + side * 2 + lean
        _seg(g, 4, c0, 4 + dr, c0 + dc, _SHIRT)
        r, c = 4 + dr, c0 + dc
        if 0 <= r < 15 and 0 <= c < 13:
            g[r, c] = _SKIN
    return g


def _lying(bucket: int) -> np.ndarray:
    """Label grid (6, 17) of a person lying on the ground, head to the right; row 5 = ground."""
    g = np.zeros((6, 17), dtype=np.uint8)
    g[3:5, 14:16] = _SKIN
    g[3:5, 16] = _HAIR
    g[3:6, 8:14] = _SHIRT
    g[4:6, 2:8] = _PANTS
    twitch = bucket % 4
    # limbs that move while the person struggles on the ground
    _seg(g, 3, 12, 1 + (twitch & 1), 9 + 2 * (twitch >> 1), _SHIRT)
    _seg(g, 4, 3, 2 + ((twitch + 1) & 1), 1 + (twitch >> 1), _PANTS)
    return g


@lru_cache(maxsize=4096)
def person_sprite(
    pose: Pose, bucket: int, facing: int, palette: tuple[int, int, int, int]
) -> Sprite:
    """Sprite of a person. ``palette`` indexes (HAIR, SKIN, SHIRT, PANTS); ``facing`` is +1/-1."""
    hair, skin, shirt, pants = palette
    grid = _lying(bucket) if pose is Pose.LYING else _upright(pose, bucket)
    if facing < 0:
        grid = grid[:, ::-1]
    rgb, mask = _colour(
        grid,
        {_HAIR: HAIR[hair], _SKIN: SKIN[skin], _SHIRT: SHIRT[shirt], _PANTS: PANTS[pants]},
    )
    return rgb, mask, (grid.shape[0] - 1, grid.shape[1] // 2)


@lru_cache(maxsize=256)
def car_sprite(colour: int, facing: int, lights: bool) -> Sprite:
    """Sprite (10, 22) of a car seen from the side, wheels on row 9, front towards ``facing``."""
    h, w = 10, 22
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), dtype=bool)
    body = CAR[colour]
    rgb[0:3, 6:16] = body
    mask[0:3, 6:16] = True
    rgb[1:3, 7:15] = (70, 82, 98)  # windows
    rgb[1:3, 11] = body
    rgb[3:8, 0:22] = body
    mask[3:8, :] = True
    rgb[7, :] = (60, 60, 64)
    for c0 in (3, 15):
        rgb[8:10, c0 : c0 + 4] = (45, 45, 48)
        mask[8:10, c0 : c0 + 4] = True
    rgb[4:6, 21] = (255, 240, 170) if lights else (215, 215, 200)
    rgb[4:6, 0] = (200, 30, 30)
    if facing < 0:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(rgb), np.ascontiguousarray(mask), (h - 1, w // 2)


def _block(h: int, w: int, colour: RGB) -> Sprite:
    rgb = np.empty((h, w, 3), dtype=np.uint8)
    rgb[:] = colour
    return rgb, np.ones((h, w), dtype=bool), (h - 1, w // 2)


@lru_cache(maxsize=64)
def object_sprite(kind: str, colour: int = 0) -> Sprite:
    """Sprites of small objects: ``bag``, ``package``, ``skateboard``, ``debris``, ``stone``,
    ``bicycle``."""
    if kind == "bag":
        rgb, mask, anchor = _block(4, 5, ((95, 60, 35), (30, 30, 35), (60, 80, 50))[colour % 3])
        rgb[0, 1:4] = (20, 20, 20)
        mask[0, 0] = mask[0, 4] = False
        return rgb, mask, anchor
    if kind == "package":
        return _block(2, 3, (235, 225, 190))
    if kind == "skateboard":
        rgb, mask, anchor = _block(3, 10, (200, 60, 40))
        rgb[2, :] = (25, 25, 25)
        mask[2, [0, 3, 4, 5, 6, 9]] = False
        return rgb, mask, anchor
    if kind == "debris":
        return _block(2, 2, ((230, 220, 200), (140, 130, 120), (250, 180, 60))[colour % 3])
    if kind == "stone":
        return _block(2, 2, (120, 115, 105))
    if kind == "bicycle":  # side view, 11 x 6: two wheels, frame, saddle, handlebar
        rgb = np.zeros((6, 11, 3), dtype=np.uint8)
        mask = np.zeros((6, 11), dtype=bool)
        for c0 in (0, 7):
            mask[2:6, c0 : c0 + 4] = True
            mask[3:5, c0 + 1 : c0 + 3] = False
            rgb[2:6, c0 : c0 + 4] = (30, 30, 32)
        frame = ((40, 110, 190), (200, 50, 50), (235, 235, 230))[colour % 3]
        tubes = ((3, 2), (2, 3), (2, 4), (2, 5), (2, 6), (3, 7), (3, 5), (4, 4), (1, 4))
        for r, c in (*tubes, (0, 8), (1, 8)):  # + handlebar
            mask[r, c] = True
            rgb[r, c] = frame
        mask[0, 3:6] = True  # saddle
        rgb[0, 3:6] = (25, 25, 25)
        return rgb, mask, (5, 5)
    raise ValueError(f"unknown object sprite {kind!r}")


def random_palette(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random person palette: indices into (HAIR, SKIN, SHIRT, PANTS)."""
    return (
        int(rng.integers(len(HAIR))),
        int(rng.integers(len(SKIN))),
        int(rng.integers(len(SHIRT))),
        int(rng.integers(len(PANTS))),
    )
