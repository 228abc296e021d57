"""Scripts of anomalies involving vehicles, objects, fire and weapons.

As in ``events.py``, each script realises an event on frames ``ev.start..ev.end`` (inclusive).
"""

from __future__ import annotations

import numpy as np

from harness.sample_world.actors import WALK_SPEED, Effect, Key, Pose, person, thing
from harness.sample_world.scene import WIDTH
from harness.sample_world.sprites import CAR
from harness.sample_world.stage import AnomalyEvent, Stage, Timing, script

CAR_HALF = 11.0  # half length of a car sprite (px)


def _debris(st: Stage, x: float, y: float, t0: int, n: int, speed: float) -> None:
    """``n`` fragments flung from ``(x, y)`` at frame ``t0``, falling for ~0.8 s."""
    rng = st.rng
    steps = st.s(0.8)
    tt = np.arange(steps + 1)
    g = 200.0 / st.fps**2
    for i in range(n):
        ang = rng.uniform(0, 2 * np.pi)
        v = rng.uniform(0.4, 1.0) * speed / st.fps
        xs = x + v * np.cos(ang) * tt
        ys = y + v * min(np.sin(ang), 0.3) * tt + 0.5 * g * tt**2 * 0.3
        keys = [(float(t0 + k), float(a), float(b)) for k, a, b in zip(tt, xs, ys, strict=True)]
        st.add(thing("debris", st.num_frames, keys, colour=i % 3))


@script("vehicle_on_sidewalk", Timing(1.6, 2.2))
def vehicle_on_sidewalk(ev: AnomalyEvent, st: Stage) -> None:
    """A car swerves from its lane onto the walkway at ``start`` and races along it, leaving the
    frame at ``end``; a pedestrian jumps out of its way."""
    rng, way = st.rng, st.way()
    lane = min(st.scene.lanes, key=lambda ln: abs(ln.y - way.car_y))
    d = lane.direction
    x_exit = st.edge(d, CAR_HALF - 2)
    dur = (ev.end - ev.start) / st.fps
    x_m = rng.uniform(20, 50) if d > 0 else rng.uniform(WIDTH - 50, WIDTH - 20)
    speed = abs(x_exit - x_m) / dur
    t_on = ev.start + st.s(0.3)
    x_on = x_m + d * speed * 0.3
    keys = st.walk_in(d, x_m, float(lane.y), ev.start, 55.0)
    keys += [(t_on, x_on, float(way.car_y)), (ev.end, x_exit, float(way.car_y))]
    car = st.add(
        thing("car", st.num_frames, keys, int(rng.integers(len(CAR))), st.scene.lights), "car"
    )
    car.jitter(t_on, ev.end, 0.0, 1.2, rng, every=3)
    # a pedestrian ahead dodges the car
    x_d = x_on + d * rng.uniform(30, 50)
    t_d = t_on + abs(x_d - x_on) / speed * st.fps - st.s(0.4)
    y = st.feet(way)
    keys = st.walk_in(way.flow, x_d, y, t_d, WALK_SPEED)
    y_away = way.top - 6 if y > (way.top + way.bottom) / 2 else way.bottom + 6
    keys += st.flee(x_d, y_away, t_d + st.s(0.3), ev.end, way.flow)
    p = st.add(person(st.num_frames, keys, st.palette()), "pedestrian")
    p.set_pose(int(t_d), ev.end, Pose.RUN)


@script("car_crash", Timing(2.2, 3.0))
def car_crash(ev: AnomalyEvent, st: Stage) -> None:
    """A car drifts into the oncoming lane at ``start`` and hits a car head-on; debris flies,
    hazard lights blink and smoke rises until ``end``; afterwards both cars drive off."""
    rng = st.rng
    la, lb = st.scene.lanes[0], st.scene.lanes[1]
    d = la.direction  # car A drives in direction d and swerves into lane B (opposite direction)
    xc = rng.uniform(55, 105)
    t_imp = ev.start + st.s(0.5)
    xa, xb = xc - d * CAR_HALF, xc + d * CAR_HALF
    v = 55.0
    keys = st.walk_in(d, xa - d * v * 0.5, float(la.y), ev.start, v)
    keys += [
        (t_imp, xa, float(lb.y)),
        (t_imp + 3, xa - d * 5, lb.y - 2.0),
        (ev.end + 1, xa - d * 5, lb.y - 2.0),
    ]
    keys += st.walk_out(d, xa - d * 5, float(la.y), ev.end + 1 + st.s(0.8), 30.0)[1:]
    a = st.add(
        thing("car", st.num_frames, keys, int(rng.integers(len(CAR))), st.scene.lights), "car"
    )
    keys = st.walk_in(-d, xb, float(lb.y), t_imp, v)
    keys += [(t_imp + 3, xb + d * 4, lb.y + 1.0), (ev.end + 1, xb + d * 4, lb.y + 1.0)]
    keys += st.walk_out(-d, xb + d * 4, float(lb.y), ev.end + 1 + st.s(0.8), 30.0)[1:]
    b = st.add(
        thing("car", st.num_frames, keys, int(rng.integers(len(CAR))), st.scene.lights), "car"
    )
    for car in (a, b):
        car.jitter(t_imp, t_imp + st.s(0.4), 1.5, 1.0, rng)
        car.set_facing(t_imp, ev.end + st.s(0.8), int(car.facing[max(t_imp - 1, 0)]))
    _debris(st, xc, lb.y - 5.0, t_imp, 10, 80.0)
    t_b = t_imp + st.s(0.3)
    for x, y in ((xa - d * 10, lb.y - 7.0), (xa + d * 8, lb.y - 7.0), (xb + d * 8, lb.y - 6.0)):
        st.effect(Effect("blink", t_b, ev.end, x, y))
    st.effect(Effect("smoke", t_imp, ev.end, xc, lb.y - 9.0))
    # passers-by rush over, wave their arms at the wreck and run off again before `end`
    t_arr, t_go = t_imp + st.s(0.6), ev.end - st.s(0.6)
    for way in st.scene.walkways:
        xp = xc + rng.uniform(-40, 40)
        y0, y1 = st.feet(way), float(way.top if way.top > lb.y else way.bottom)
        xs = xc + rng.uniform(-14, 14)
        keys = st.walk_in(way.flow, xp, y0, t_imp, WALK_SPEED)
        keys += [(t_arr, xs, y1)] + st.flee(xs, y1, t_go, ev.end)
        p = st.add(person(st.num_frames, keys, st.palette()), "bystander")
        p.set_pose(t_imp + 1, ev.end, Pose.RUN).set_pose(t_arr, t_go, Pose.FLAIL)
        p.scramble_phase(t_arr, t_go, rng, every=2).jitter(t_arr, t_go, 1.5, 0.5, rng)


@script("abandoned_object", Timing(2.5, 3.5, until_end=True))
def abandoned_object(ev: AnomalyEvent, st: Stage) -> None:
    """A person carries a bag, puts it down, waits, and walks away at ``start`` (the anomaly
    begins when they leave it); the bag stays until the last frame."""
    rng, way = st.rng, st.way()
    f, y = way.flow, st.feet(way)
    x = rng.uniform(45, 115)
    t_drop = ev.start - st.s(1.2)
    keys = st.walk_in(f, x, y, t_drop - st.s(0.6), WALK_SPEED)
    keys += st.walk_out(f, x, y, ev.start, WALK_SPEED * 1.25)
    owner = st.add(person(st.num_frames, keys, st.palette()), "owner")
    bag = thing(
        "bag",
        st.num_frames,
        [(0.0, 0.0, 0.0), (float(st.num_frames), 0.0, 0.0)],
        int(rng.integers(3)),
    )
    t = np.arange(st.num_frames)
    carried = t < t_drop
    bag.x = np.where(carried, owner.x + f * 4.0, x + f * 4.0)
    bag.y = np.where(carried, owner.y - 4.0, y)
    bag.visible = np.where(carried, owner.visible, True)
    st.add(bag, "bag")


@script("skateboard", Timing(1.4, 2.0))
def skateboard(ev: AnomalyEvent, st: Stage) -> None:
    """A riderless skateboard rolls fast along a walkway; in view exactly on ``start..end``."""
    way = st.way()
    d = 1 if st.rng.random() < 0.5 else -1
    y = st.feet(way)
    keys: list[Key] = [
        (ev.start, st.edge(-d, -4.0), y),
        (ev.end, st.edge(d, -4.0), y + st.rng.uniform(-3, 3)),
    ]
    st.add(thing("skateboard", st.num_frames, keys), "board").jitter(
        ev.start, ev.end, 0.5, 1.2, st.rng
    )


@script("fire", Timing(2.5, 4.0))
def fire(ev: AnomalyEvent, st: Stage) -> None:
    """Someone sets the trash bin on fire: flames flicker and smoke rises on the interval; the
    arsonist runs off at ``start``."""
    hx, hy = st.scene.hotspot
    way = min(st.scene.walkways, key=lambda w: abs(w.bottom - hy))
    y = float(way.top + 1)
    keys = st.walk_in(way.flow, hx - 6 * way.flow, y, ev.start - st.s(1.2), WALK_SPEED)
    keys += st.flee(hx - 6 * way.flow, y, ev.start, ev.end, -way.flow)
    p = st.add(person(st.num_frames, keys, st.palette()), "arsonist")
    p.set_pose(ev.start, ev.end, Pose.RUN)
    st.effect(Effect("fire", ev.start, ev.end, float(hx), float(hy - 8), 9.0))
    st.effect(Effect("smoke", ev.start + st.s(0.4), ev.end, float(hx), float(hy - 22)))


@script("explosion", Timing(2.0, 3.0))
def explosion(ev: AnomalyEvent, st: Stage) -> None:
    """A blast on the road: a bright flash, an expanding fireball, debris, then flames and smoke;
    passers-by flee and are gone by ``end``."""
    rng = st.rng
    lanes = st.scene.lanes
    x, y = rng.uniform(45, 115), float((lanes[0].y + lanes[1].y) // 2)
    st.effect(Effect("flash", ev.start, ev.start + 6))
    st.effect(Effect("fireball", ev.start, ev.start + st.s(0.9), x, y - 6, 24.0))
    st.effect(Effect("fire", ev.start + st.s(0.4), ev.end, x, y, 14.0))
    st.effect(Effect("smoke", ev.start + st.s(0.4), ev.end, x, y - 20))
    _debris(st, x, y - 6, ev.start, 14, 140.0)
    for way in st.scene.walkways:
        xp = x + rng.uniform(-30, 30)
        yp = st.feet(way)
        keys = st.walk_in(way.flow, xp, yp, ev.start, WALK_SPEED)
        keys += st.flee(xp, yp, ev.start + st.s(0.3), ev.end, 1 if xp > x else -1)
        st.add(person(st.num_frames, keys, st.palette()), "bystander").set_pose(
            ev.start, ev.end, Pose.RUN
        )


@script("shooting", Timing(1.8, 2.6))
def shooting(ev: AnomalyEvent, st: Stage) -> None:
    """A person stops and fires a gun (muzzle flashes) from ``start``; bystanders run away and
    the shooter flees, all out of view by ``end``."""
    rng, way = st.rng, st.way()
    f, y = way.flow, st.feet(way)
    x = rng.uniform(50, 110)
    aim = 1 if rng.random() < 0.5 else -1
    t_run = ev.end - st.s(0.9)
    keys = st.walk_in(f, x, y, ev.start - st.s(0.5), WALK_SPEED)
    keys += st.flee(x, y, t_run, ev.end)
    p = st.add(person(st.num_frames, keys, st.palette()), "shooter")
    p.set_facing(ev.start - st.s(0.5), t_run, aim).set_pose(t_run + 1, ev.end, Pose.RUN)
    shots, t = [], ev.start
    while t < t_run:
        shots.append(t)
        t += int(rng.integers(3, 8))
    st.effect(Effect("muzzle", ev.start, t_run, x + aim * 7, y - 10, frames=tuple(shots)))
    for other in st.scene.walkways:
        for _ in range(2):
            xb = float(np.clip(x + aim * rng.uniform(15, 45), 4, WIDTH - 5))
            yb = st.feet(other)
            keys = st.walk_in(other.flow, xb, yb, ev.start + 2, WALK_SPEED)
            keys += st.flee(xb, yb, ev.start + 3, ev.end, aim)
            b = st.add(person(st.num_frames, keys, st.palette()), "bystander")
            b.set_pose(ev.start + 3, ev.end, Pose.RUN)
