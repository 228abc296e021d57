"""Scripts of anomalies performed by people (fights, falls, pushes, running against the flow...).

Each script realises an :class:`~harness.sample_world.stage.AnomalyEvent` on frames
``ev.start..ev.end`` (inclusive): the abnormal behaviour starts at ``ev.start`` and has stopped,
or left the frame, after ``ev.end``.
"""

from __future__ import annotations

import numpy as np

from harness.sample_world.actors import WALK_SPEED, Key, Pose, person, thing
from harness.sample_world.scene import WIDTH
from harness.sample_world.stage import AnomalyEvent, Stage, Timing, script

#: Height (px) of a held object above a person's feet.
HAND_HEIGHT = 6.0


def _fight_pair(st: Stage, start: int, end: int, x: float, y: float, flow: int) -> None:
    """Two people walk in with the flow, fight on ``start..end``, then walk on."""
    rng = st.rng
    for side, speed, lag in ((-1, WALK_SPEED, 0.0), (1, WALK_SPEED * 1.35, 0.4)):
        xa = x + side * 4 * flow
        keys = st.walk_in(flow, xa, y, start - st.s(lag), speed)
        keys += st.walk_out(
            flow, xa, y + rng.uniform(-2, 2), end + 1 + st.s(0.3 * (side + 1)), WALK_SPEED * 1.2
        )
        p = st.add(person(st.num_frames, keys, st.palette()), "fighter")
        p.set_pose(start, end, Pose.FLAIL).scramble_phase(start, end, rng)
        p.jitter(start, end, 3.0, 1.5, rng).set_facing(start, end, -side * flow)


@script("fight", Timing(2.0, 3.5))
def fight(ev: AnomalyEvent, st: Stage) -> None:
    """Two people close together throwing punches: fast jittering limbs and positions."""
    way = st.way()
    _fight_pair(st, ev.start, ev.end, st.rng.uniform(40, 120), st.feet(way), way.flow)


@script("fall", Timing(2.0, 3.0))
def fall(ev: AnomalyEvent, st: Stage) -> None:
    """A walker stumbles and falls: the body becomes horizontal and stays down, struggling, for
    the whole interval; the person gets up after ``end``."""
    rng, way = st.rng, st.way()
    f, y = way.flow, st.feet(way)
    x = rng.uniform(45, 115)
    keys = st.walk_in(f, x, y, ev.start, WALK_SPEED)
    keys += [(ev.end + 1 + st.s(0.7), x + 2 * f, y)]
    keys += st.walk_out(f, x + 2 * f, y, ev.end + 2 + st.s(0.7), WALK_SPEED * 0.8)[1:]
    p = st.add(person(st.num_frames, keys, st.palette()), "faller")
    p.set_pose(ev.start, ev.start + 3, Pose.FLAIL).scramble_phase(ev.start, ev.start + 3, rng)
    p.set_pose(ev.start + 4, ev.end, Pose.LYING).set_facing(ev.start, ev.end, f)
    p.struggle(ev.start + 4, ev.end, rng)
    p.set_pose(ev.end + 1, ev.end + st.s(0.7), Pose.STAND)


def _shove(ev: AnomalyEvent, st: Stage, flee: bool) -> None:
    """An attacker catches up with a walker and shoves them; the victim is thrown forward, falls
    and struggles until ``end``; the attacker leaves the frame by ``end`` (running if ``flee``)."""
    rng, way = st.rng, st.way()
    f, y = way.flow, st.feet(way)
    x = rng.uniform(50, 110)
    t_hit = ev.start + st.s(0.3)
    # victim
    keys = st.walk_in(f, x, y, ev.start, WALK_SPEED)
    keys += [(t_hit, x + 14 * f, y), (ev.end + 1 + st.s(0.7), x + 14 * f, y)]
    keys += st.walk_out(f, x + 14 * f, y, ev.end + 2 + st.s(0.7), WALK_SPEED * 0.8)[1:]
    v = st.add(person(st.num_frames, keys, st.palette()), "victim")
    v.set_pose(ev.start, t_hit, Pose.RUN)
    v.set_pose(t_hit + 1, ev.end, Pose.LYING).set_facing(ev.start, ev.end, f)
    v.struggle(t_hit + 1, ev.end, rng)
    v.set_pose(ev.end + 1, ev.end + st.s(0.7), Pose.STAND)
    # attacker: catches up from behind at a brisk walk and shoves; then either runs off against
    # the flow, out of view by `end` (flee), or walks on with the flow
    t_off = t_hit + st.s(0.2)
    keys = st.walk_in(f, x - 5 * f, y, ev.start, WALK_SPEED * 1.8)
    keys += [(t_hit, x - 3 * f, y)]
    if flee:
        keys += st.flee(x - 3 * f, y, t_off, ev.end, -f)
    else:
        keys += st.walk_out(f, x - 3 * f, y, t_off + st.s(0.4), WALK_SPEED * 1.3)
    a = st.add(person(st.num_frames, keys, st.palette()), "attacker")
    if flee:
        a.set_pose(t_off + 1, ev.end, Pose.RUN)
    a.set_pose(ev.start, t_off, Pose.FLAIL).scramble_phase(ev.start, t_off, rng)
    a.set_facing(ev.start, t_off, f).jitter(ev.start, t_hit, 1.5, 0.6, rng)


@script("push", Timing(2.0, 3.0))
def push(ev: AnomalyEvent, st: Stage) -> None:
    """A person pushes another, who falls (ComplexVAD-style interaction)."""
    _shove(ev, st, flee=False)


@script("assault", Timing(2.2, 3.2))
def assault(ev: AnomalyEvent, st: Stage) -> None:
    """An attacker runs up, knocks a walker down and runs off against the flow."""
    _shove(ev, st, flee=True)


@script("abuse", Timing(2.5, 3.5))
def abuse(ev: AnomalyEvent, st: Stage) -> None:
    """A person knocks another to the ground and keeps striking them (victim jolts)."""
    rng, way = st.rng, st.way()
    f, y = way.flow, st.feet(way)
    x = rng.uniform(45, 115)
    keys = st.walk_in(f, x, y, ev.start, WALK_SPEED)
    keys += [(ev.end + 1 + st.s(0.8), x, y)]
    keys += st.walk_out(f, x, y, ev.end + 2 + st.s(0.8), WALK_SPEED * 0.7)[1:]
    v = st.add(person(st.num_frames, keys, st.palette()), "victim")
    v.set_pose(ev.start, ev.end, Pose.LYING).set_facing(ev.start, ev.end, f)
    v.struggle(ev.start, ev.end, rng)
    v.set_pose(ev.end + 1, ev.end + st.s(0.8), Pose.STAND)
    keys = st.walk_in(f, x - 6 * f, y + 1, ev.start, WALK_SPEED * 1.6)
    keys += st.walk_out(f, x - 6 * f, y + 1, ev.end + 1, WALK_SPEED * 1.4)
    a = st.add(person(st.num_frames, keys, st.palette()), "attacker")
    a.set_pose(ev.start, ev.end, Pose.FLAIL).scramble_phase(ev.start, ev.end, rng)
    a.jitter(ev.start, ev.end, 2.0, 1.0, rng).set_facing(ev.start, ev.end, f)


@script("run_against_flow", Timing(1.8, 2.6))
def run_against_flow(ev: AnomalyEvent, st: Stage) -> None:
    """Someone sprints along a walkway against its flow; in view exactly on ``start..end``."""
    way = st.way()
    d, y = -way.flow, st.feet(way)
    keys = [(ev.start, st.edge(-d, -5.0), y), (ev.end, st.edge(d, -5.0), y + st.rng.uniform(-2, 2))]
    st.add(person(st.num_frames, keys, st.palette(), Pose.RUN), "runner")


@script("chase", Timing(2.2, 3.0))
def chase(ev: AnomalyEvent, st: Stage) -> None:
    """One person chases another at a sprint (direction random); both in view on the interval."""
    way = st.way()
    d = 1 if st.rng.random() < 0.5 else -1
    y, lag = st.feet(way), 16.0
    x0, x1 = st.edge(-d, -5.0), st.edge(d, -5.0)
    keys = [(ev.start, x0, y), (ev.end, x1 + d * lag, y)]
    st.add(person(st.num_frames, keys, st.palette(), Pose.RUN), "fleeing")
    keys = [(ev.start, x0 - d * lag, y + 1), (ev.end, x1, y + 1)]
    st.add(person(st.num_frames, keys, st.palette(), Pose.RUN), "chaser")


@script("riot", Timing(3.0, 4.0))
def riot(ev: AnomalyEvent, st: Stage) -> None:
    """A crowd rushes in, brawls and throws stones, then scatters; in view on the interval."""
    rng, way = st.rng, st.way()
    xc = rng.uniform(55, 105)
    t_in, t_out = ev.start + st.s(0.8), ev.end - st.s(0.8)
    for i in range(int(rng.integers(6, 9))):
        d = 1 if i % 2 else -1  # arriving from the left (d=+1) or the right
        x = xc + rng.uniform(-20, 20)
        y = float(rng.integers(way.top, way.bottom + 4))
        keys: list[Key] = [(ev.start, st.edge(-d, -5.0), y), (t_in, x, y)]
        keys += st.flee(x, y, t_out, ev.end, int(rng.choice([-1, 1])))
        p = st.add(person(st.num_frames, keys, st.palette(), Pose.RUN), "rioter")
        p.set_pose(t_in, t_out, Pose.FLAIL).scramble_phase(t_in, t_out, rng)
        p.jitter(t_in, t_out, 2.5, 1.2, rng).set_facing(t_in, t_out, 1 if x < xc else -1)
    for _ in range(3):  # thrown stones on ballistic paths
        t0 = int(rng.integers(t_in, max(t_in + 1, t_out - st.s(0.6))))
        n = st.s(0.6)
        tt = np.arange(n + 1)
        vx, vy = rng.uniform(-110, 110) / st.fps, -rng.uniform(60, 100) / st.fps
        g = 220.0 / st.fps**2
        xs, ys = xc + vx * tt, way.top - 6 + vy * tt + 0.5 * g * tt**2
        st.add(
            thing(
                "stone",
                st.num_frames,
                [(float(t0 + k), float(a), float(b)) for k, a, b in zip(tt, xs, ys, strict=True)],
            )
        )


@script("exchange", Timing(2.5, 3.5))
def exchange(ev: AnomalyEvent, st: Stage) -> None:
    """Two people meet beside a parked car, hand a package back and forth while glancing around
    nervously, then hurry off in opposite directions (leaving the frame by ``end``)."""
    rng = st.rng
    way = max(st.scene.walkways, key=lambda w: w.top)  # the walkway nearest the camera
    yw = float(way.top + 1)
    if st.scene.parked:
        cx, cy = st.scene.parked[int(rng.integers(len(st.scene.parked)))]
        mx, y = float(cx + 16 if cx < WIDTH - 30 else cx - 16), float(cy + 4)
    else:
        mx, y = float(rng.uniform(50, 110)), yw
    t_go = ev.end - st.s(0.9)
    for side in (-1, 1):
        x = mx + 3 * side
        keys = st.walk_in(-side, x, yw, ev.start - st.s(0.6), WALK_SPEED * 1.2)
        keys += [(ev.start, x, y), (t_go, x, y)]
        keys += st.flee(x, yw, t_go + st.s(0.2), ev.end, side)
        p = st.add(person(st.num_frames, keys, st.palette()), "dealer")
        p.set_facing(ev.start, t_go, -side)
        p.set_pose(ev.start, t_go, Pose.FLAIL).scramble_phase(ev.start, t_go, rng)
        p.jitter(ev.start, t_go, 1.5, 0.7, rng)
        flips = np.flatnonzero(rng.random(t_go - ev.start) < 0.3) + ev.start
        for t in flips:  # glancing around
            p.set_facing(int(t), int(t) + 3, side)
        p.set_pose(t_go + 1, ev.end, Pose.RUN)
    tt = np.arange(ev.start, t_go + 1)
    xs = mx + 4.0 * np.sin(2 * np.pi * (tt - ev.start) / st.s(0.5))
    keys = [(float(t), float(a), y - HAND_HEIGHT) for t, a in zip(tt, xs, strict=True)]
    st.add(thing("package", st.num_frames, keys), "package")


# VANE-Bench-style inconsistencies (as in AI-generated videos): the discontinuity is at `start`.


@script("sudden_appearance", Timing(1.2, 1.8))
def sudden_appearance(ev: AnomalyEvent, st: Stage) -> None:
    """A person pops into existence in the middle of a walkway at ``start`` (first visible frame;
    nobody was there on the frame before) and walks on with the flow."""
    way = st.way()
    y, x = st.feet(way), st.rng.uniform(50, 110)
    keys = st.walk_out(way.flow, x, y, ev.start, WALK_SPEED)
    st.add(person(st.num_frames, keys, st.palette()), "subject")


@script("disappearance", Timing(1.2, 1.8))
def disappearance(ev: AnomalyEvent, st: Stage) -> None:
    """A person walking along a walkway vanishes mid-stride: last visible on ``start - 1``, gone
    from ``start`` on (the interval covers the now empty spot)."""
    way = st.way()
    y, x = st.feet(way), st.rng.uniform(50, 110)
    keys = st.walk_in(way.flow, x, y, ev.start - 1, WALK_SPEED)
    st.add(person(st.num_frames, keys, st.palette()), "subject")
