"""Scene geometry and the static background of the fixed camera.

Three styles, all ``160 x 120`` pixels (width x height):

- ``street``: a city street by day (UCF-Crime): building facade, an upper sidewalk where people
  walk to the right, a two-lane road (upper lane drives left, lower lane right) with a crosswalk,
  a lower sidewalk where people walk to the left, a grass verge with trees and a bench, lamp
  posts and a trash bin.
- ``dusk``: the same street at dusk with lit windows and headlights (XD-Violence).
- ``campus``: a campus plaza (ComplexVAD): a building, an upper footpath (flow to the right), a
  campus road with little traffic, a row of parked cars, a lower footpath (flow to the left)
  and a lawn with trees.

Rows are image rows (0 = top); a walkway's ``top..bottom`` is the range of feet rows used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.sample_world.sprites import car_sprite

WIDTH = 160
HEIGHT = 120
STYLES = ("street", "dusk", "campus")


@dataclass(frozen=True)
class Walkway:
    """A pedestrian band. ``flow`` is +1 if people walk to the right, -1 to the left."""

    top: int
    bottom: int
    flow: int
    car_y: int  # wheel row of a vehicle driving along this walkway (anomaly)


@dataclass(frozen=True)
class Lane:
    """A traffic lane: cars' wheel row ``y`` and driving ``direction`` (+1 right, -1 left)."""

    y: int
    direction: int


@dataclass
class Scene:
    """Static part of a video: geometry, traffic densities and the background image.

    Attributes:
        background: ``(HEIGHT, WIDTH, 3)`` uint8 RGB.
        car_rate: mean cars per second per lane.
        walkers: mean number of people visible per walkway.
        parked: parked cars ``(x centre, wheel row)``, part of the background.
        hotspot: ``(x, bottom row)`` of the trash bin (where fires start).
    """

    style: str
    fps: int
    walkways: tuple[Walkway, ...]
    lanes: tuple[Lane, ...]
    car_rate: float
    walkers: float
    parked: tuple[tuple[int, int], ...]
    hotspot: tuple[int, int]
    lights: bool
    background: np.ndarray

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def height(self) -> int:
        return HEIGHT


def _fill(
    img: np.ndarray, r0: int, r1: int, c0: int, c1: int, colour: tuple[int, int, int]
) -> None:
    """Fill rows ``r0..r1`` and columns ``c0..c1`` (inclusive, clipped)."""
    img[max(r0, 0) : min(r1 + 1, HEIGHT), max(c0, 0) : min(c1 + 1, WIDTH)] = colour


def _texture(img: np.ndarray, r0: int, r1: int, amp: int, rng: np.random.Generator) -> None:
    """Static grain on rows ``r0..r1`` (asphalt, grass) so surfaces are not perfectly flat."""
    band = img[r0 : r1 + 1].astype(np.int16)
    band += rng.integers(-amp, amp + 1, size=band.shape[:2], dtype=np.int16)[..., None]
    img[r0 : r1 + 1] = np.clip(band, 0, 255).astype(np.uint8)


def _paste(
    img: np.ndarray, sprite: tuple[np.ndarray, np.ndarray, tuple[int, int]], x: int, y: int
) -> None:
    rgb, mask, (ar, ac) = sprite
    r0, c0 = y - ar, x - ac
    region = img[r0 : r0 + rgb.shape[0], c0 : c0 + rgb.shape[1]]
    np.copyto(
        region,
        rgb[: region.shape[0], : region.shape[1]],
        where=mask[: region.shape[0], : region.shape[1], None],
    )


def _tree(img: np.ndarray, x: int, base: int, colour: tuple[int, int, int]) -> None:
    _fill(img, base - 6, base, x - 1, x, (80, 55, 35))
    yy, xx = np.ogrid[:HEIGHT, :WIDTH]
    crown = (yy - (base - 11)) ** 2 + ((xx - x) * 0.8) ** 2 <= 36
    img[crown] = colour


def _facade(
    img: np.ndarray, bottom: int, wall: tuple[int, int, int], lit: bool, rng: np.random.Generator
) -> None:
    _fill(img, 0, bottom, 0, WIDTH - 1, wall)
    for c in range(4, WIDTH - 6, 14):
        for r in range(3, bottom - 8, 9):
            on = lit and rng.random() < 0.55
            _fill(img, r, r + 4, c, c + 6, (235, 205, 120) if on else (60, 70, 85))
    _fill(img, bottom - 8, bottom, 66, 74, (70, 50, 40))  # door


def _street(fps: int, rng: np.random.Generator, dusk: bool) -> Scene:
    img = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    dim = 0.62 if dusk else 1.0

    def c(r: int, g: int, b: int) -> tuple[int, int, int]:
        return (int(r * dim), int(g * dim), int(b * dim))

    _facade(img, 27, c(165, 140, 120), dusk, rng)
    _fill(img, 28, 45, 0, WIDTH - 1, c(168, 165, 158))
    _fill(img, 46, 46, 0, WIDTH - 1, c(205, 205, 200))
    _fill(img, 47, 82, 0, WIDTH - 1, c(82, 84, 88))
    _texture(img, 47, 82, 3, rng)
    for x0 in range(2, WIDTH, 16):
        _fill(img, 65, 65, x0, x0 + 7, c(220, 210, 120))
    for r in range(48, 82, 4):  # crosswalk
        _fill(img, r, r + 1, 104, 119, c(215, 215, 210))
    _fill(img, 83, 83, 0, WIDTH - 1, c(205, 205, 200))
    _fill(img, 84, 101, 0, WIDTH - 1, c(168, 165, 158))
    for x0 in range(0, WIDTH, 10):
        _fill(img, 28, 45, x0, x0, c(150, 148, 142))
        _fill(img, 84, 101, x0, x0, c(150, 148, 142))
    _fill(img, 102, HEIGHT - 1, 0, WIDTH - 1, c(70, 125, 60))
    _texture(img, 102, HEIGHT - 1, 6, rng)
    for x in (12, 58, 132):
        _tree(img, x, 118, c(45, 105, 45))
    _fill(img, 110, 113, 88, 104, c(120, 85, 55))  # bench
    _fill(img, 114, 117, 89, 89, c(40, 40, 40))
    _fill(img, 114, 117, 103, 103, c(40, 40, 40))
    for x in (18, 88, 148):  # lamp posts
        _fill(img, 8, 44, x, x, c(50, 50, 55))
        _fill(img, 6, 8, x - 2, x + 2, (250, 235, 160) if dusk else (60, 60, 65))
    hotspot = (36, 101)
    _fill(img, 93, 101, 33, 39, c(60, 70, 60))  # trash bin
    _fill(img, 93, 93, 32, 40, c(40, 45, 40))
    return Scene(
        style="dusk" if dusk else "street",
        fps=fps,
        walkways=(Walkway(34, 44, +1, 44), Walkway(89, 100, -1, 100)),
        lanes=(Lane(61, -1), Lane(79, +1)),
        car_rate=0.16,
        walkers=2.0,
        parked=(),
        hotspot=hotspot,
        lights=dusk,
        background=img,
    )


def _campus(fps: int, rng: np.random.Generator) -> Scene:
    img = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    _facade(img, 21, (150, 80, 60), False, rng)
    _fill(img, 22, 43, 0, WIDTH - 1, (196, 184, 160))
    for x0 in range(0, WIDTH, 8):
        _fill(img, 22, 43, x0, x0, (180, 168, 146))
    _fill(img, 44, 48, 0, WIDTH - 1, (80, 140, 65))
    _texture(img, 44, 48, 6, rng)
    _fill(img, 49, 70, 0, WIDTH - 1, (90, 92, 95))
    _texture(img, 49, 70, 3, rng)
    for x0 in range(4, WIDTH, 18):
        _fill(img, 60, 60, x0, x0 + 8, (210, 210, 205))
    _fill(img, 71, 88, 0, WIDTH - 1, (120, 120, 122))
    for x0 in range(0, WIDTH, 32):
        _fill(img, 72, 86, x0, x0, (230, 230, 225))
    parked = ((16, 84), (80, 84), (144, 84))
    for i, (x, y) in enumerate(parked):
        _paste(img, car_sprite((i * 3 + 1) % 8, 1 if i % 2 else -1, False), x, y)
    _fill(img, 89, 104, 0, WIDTH - 1, (196, 184, 160))
    for x0 in range(4, WIDTH, 8):
        _fill(img, 89, 104, x0, x0, (180, 168, 146))
    _fill(img, 105, HEIGHT - 1, 0, WIDTH - 1, (75, 135, 62))
    _texture(img, 105, HEIGHT - 1, 6, rng)
    for x in (30, 100, 150):
        _tree(img, x, 119, (40, 110, 45))
    hotspot = (122, 104)
    _fill(img, 96, 104, 119, 125, (70, 70, 80))  # bin
    return Scene(
        style="campus",
        fps=fps,
        walkways=(Walkway(30, 42, +1, 42), Walkway(94, 103, -1, 103)),
        lanes=(Lane(59, -1), Lane(70, +1)),
        car_rate=0.08,
        walkers=2.0,
        parked=parked,
        hotspot=hotspot,
        lights=False,
        background=img,
    )


def build_scene(style: str, fps: int, rng: np.random.Generator) -> Scene:
    """The scene of one video. ``rng`` only varies small details (lit windows, grain)."""
    if style == "campus":
        return _campus(fps, rng)
    if style in ("street", "dusk"):
        return _street(fps, rng, dusk=style == "dusk")
    raise ValueError(f"unknown scene style {style!r}; expected one of {STYLES}")
