"""Normal activity: people walking with the flow along the walkways, cars in their lanes.

Every video, normal or not, gets this background activity from its own random stream, so normal
videos are never motionless and anomalies are added on top of an ordinary scene. Arrivals are a
renewal process started before frame 0, so the scene is already populated at the first frame.
"""

from __future__ import annotations

import numpy as np

from harness.sample_world.actors import WALK_SPEED, Actor, Pose, person, thing
from harness.sample_world.scene import WIDTH, Scene
from harness.sample_world.sprites import CAR, random_palette

#: Vehicles keep at least this many seconds between them in a lane.
MIN_CAR_GAP_S = 1.4
#: Crosswalk columns of the street styles (people cross the road there).
CROSSWALK = (104, 119)


def walkers(scene: Scene, num_frames: int, rng: np.random.Generator) -> list[Actor]:
    """People walking along each walkway in its flow direction (a few pause for a moment)."""
    fps = scene.fps
    out: list[Actor] = []
    span = WIDTH + 24
    for way in scene.walkways:
        x_in, x_out = (-12.0, WIDTH + 12.0) if way.flow > 0 else (WIDTH + 12.0, -12.0)
        mean_gap_s = span / WALK_SPEED / scene.walkers
        t = -span / (WALK_SPEED * 0.8) * fps  # start early so the walkway is populated at frame 0
        while t < num_frames:
            speed = WALK_SPEED * rng.uniform(0.85, 1.15)
            y = float(rng.integers(way.top, way.bottom + 1))
            dur = span / speed * fps
            keys = [(t, x_in, y)]
            if rng.random() < 0.1:  # pause somewhere along the way
                frac = rng.uniform(0.3, 0.7)
                xp = x_in + (x_out - x_in) * frac
                tp = t + dur * frac
                pause = rng.uniform(1.0, 2.0) * fps
                keys += [(tp, xp, y), (tp + pause, xp, y)]
                dur += pause
            keys.append((t + dur, x_out, y + rng.uniform(-1.5, 1.5)))
            if t + dur >= 0:
                out.append(person(num_frames, keys, random_palette(rng)))
            t += mean_gap_s * fps * rng.uniform(0.7, 1.3)
    return out


def cars(scene: Scene, num_frames: int, rng: np.random.Generator) -> list[Actor]:
    """Cars driving in their lanes at a steady speed (~45-65 px/s)."""
    fps = scene.fps
    out: list[Actor] = []
    for lane in scene.lanes:
        x_in, x_out = (-14.0, WIDTH + 14.0) if lane.direction > 0 else (WIDTH + 14.0, -14.0)
        lane_speed = rng.uniform(48.0, 62.0)
        t = -rng.uniform(0.0, 4.0) * fps
        while t < num_frames:
            speed = lane_speed * rng.uniform(0.97, 1.03)
            dur = abs(x_out - x_in) / speed * fps
            if t + dur >= 0:
                keys = [(t, x_in, float(lane.y)), (t + dur, x_out, float(lane.y))]
                out.append(
                    thing("car", num_frames, keys, int(rng.integers(len(CAR))), scene.lights)
                )
            t += max(MIN_CAR_GAP_S, rng.exponential(1.0 / scene.car_rate)) * fps
    return out


def _crosswalk_free(cars_: list[Actor], t0: int, t1: int) -> bool:
    lo, hi = CROSSWALK[0] - 16, CROSSWALK[1] + 16
    for car in cars_:
        s = slice(max(t0, 0), max(t1 + 1, 0))
        xs, vis = car.x[s], car.visible[s]
        if np.any(vis & (xs >= lo) & (xs <= hi)):
            return False
    return True


def crossers(
    scene: Scene, num_frames: int, cars_: list[Actor], rng: np.random.Generator
) -> list[Actor]:
    """People crossing the road on the crosswalk, only while no car is near it (street only)."""
    if scene.style == "campus":
        return []
    fps = scene.fps
    out: list[Actor] = []
    top, bottom = scene.walkways[0], scene.walkways[1]
    for _ in range(int(rng.poisson(num_frames / fps * 0.08))):
        down = rng.random() < 0.5
        y0, y1 = (top.bottom, bottom.top) if down else (bottom.top, top.bottom)
        dur = int(abs(y1 - y0) / (WALK_SPEED * 1.1) * fps)
        t0 = int(rng.integers(-dur // 2, num_frames))
        if not _crosswalk_free(cars_, t0, t0 + dur):
            continue
        x = float(rng.integers(CROSSWALK[0] + 2, CROSSWALK[1] - 1))
        keys = [(t0, x, float(y0)), (t0 + dur, x + rng.uniform(-3, 3), float(y1))]
        p = person(num_frames, keys, random_palette(rng))
        p.pose[:] = Pose.WALK
        # walking up/down the image: keep a constant facing and advance the gait
        p.set_facing(0, num_frames - 1, 1 if rng.random() < 0.5 else -1)
        out.append(p)
    return out


def normal_activity(scene: Scene, num_frames: int, rng: np.random.Generator) -> list[Actor]:
    """All background actors of one video."""
    c = cars(scene, num_frames, rng)
    return walkers(scene, num_frames, rng) + c + crossers(scene, num_frames, c, rng)
