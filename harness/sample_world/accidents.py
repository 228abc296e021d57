"""Scripts of traffic accidents that involve a vulnerable road user (the VRU-Accident sample).

As everywhere, a script realises an event on frames ``ev.start..ev.end`` (0-based, inclusive).
The road user is hit ``IMPACT_S`` after ``start``, is thrown forward along the car's direction
and lies on the road, moving weakly, until ``end``; then they get up and walk off the road. The
car brakes hard right after the impact and stays where it stopped until the end of the video,
its hazard lights blinking from shortly after the impact until ``end``. Ordinary traffic (and
people crossing at the zebra crossing) is kept off the road from a second before the road user
enters it to the end of the video, so nothing drives through the scene.

- ``crosswalk_hit``: a pedestrian crossing on the zebra crossing is hit by a car that does not
  yield (street styles only: the campus has no crossing).
- ``jaywalk_hit``: a pedestrian crosses the road away from any crossing and is hit; on the campus
  they step out into the road from between two parked cars.
- ``cyclist_hit``: a cyclist riding along the kerb side of a lane is hit from behind by a faster
  car in the same lane.

Roles (see :class:`~harness.sample_world.stage.Stage`): ``victim``, ``car`` and, for the cyclist,
``bicycle``.
"""

from __future__ import annotations

from harness.sample_world.actors import WALK_SPEED, Actor, Effect, Key, Pose, person, thing
from harness.sample_world.scene import Lane, Walkway
from harness.sample_world.sprites import CAR
from harness.sample_world.stage import AnomalyEvent, Stage, Timing, script
from harness.sample_world.traffic import CROSSWALK

#: The impact happens this long after ``start`` (seconds).
IMPACT_S = 0.3
CROSS_SPEED = WALK_SPEED * 1.1
CAR_SPEED = 60.0
BIKE_SPEED = 32.0
#: How far (px) the road user is thrown along the car's direction.
THROW = 20.0
_CAR_HALF = 11.0


def _walkways(st: Stage) -> tuple[Walkway, Walkway]:
    """The walkways (far = upper in the image, near = lower)."""
    far, near = sorted(st.scene.walkways, key=lambda w: w.top)
    return far, near


def _clear_road(st: Stage, t0: float) -> None:
    ys = [ln.y for ln in st.scene.lanes]
    st.keep_clear(min(ys) - 14, max(ys) + 4, int(t0) - st.s(1.0), st.num_frames - 1)


def _car(st: Stage, lane: Lane, x_hit: float, t_hit: int, speed: float) -> Actor:
    """A car in ``lane`` whose front reaches ``x_hit`` at ``t_hit``; it brakes hard and stays."""
    d = lane.direction
    x_stop = x_hit - d * (_CAR_HALF - 1) + d * 7
    y = float(lane.y)
    keys = st.walk_in(d, x_hit - d * (_CAR_HALF - 1), y, t_hit, speed)
    keys += [(t_hit + st.s(0.4), x_stop, y), (st.num_frames + 1.0, x_stop, y)]
    car = thing("car", st.num_frames, keys, int(st.rng.integers(len(CAR))), st.scene.lights)
    st.add(car, "car").jitter(t_hit, t_hit + st.s(0.2), 0.8, 0.6, st.rng)
    return car


def _hazards(st: Stage, car: Actor, t0: int, t1: int) -> None:
    x, y, d = float(car.x[-1]), float(car.y[-1]), int(car.facing[-1])
    for dx in (-10.0, 8.0):
        st.effect(Effect("blink", t0, t1, x + d * dx, y - 7))


def _down(st: Stage, p: Actor, ev: AnomalyEvent, t_hit: int, t_land: int) -> None:
    """Poses of a road user who is hit at ``t_hit``, tumbles, lies on the road and gets up."""
    p.set_pose(t_hit + 1, t_land, Pose.FLAIL).scramble_phase(t_hit + 1, t_land, st.rng)
    p.set_pose(t_land + 1, ev.end, Pose.LYING).scramble_phase(t_land + 1, ev.end, st.rng, 6)
    p.set_pose(ev.end + 1, ev.end + st.s(0.7), Pose.STAND)


def _crossing_hit(ev: AnomalyEvent, st: Stage, x: float, down: bool, lane: Lane) -> None:
    """A pedestrian walks along a walkway to ``x``, crosses the road there (``down``: from the far
    walkway towards the camera) and is hit by a car in ``lane``."""
    far, near = _walkways(st)
    src, dst = (far, near) if down else (near, far)
    y0 = float(src.bottom if down else src.top)
    y1 = float(dst.top if down else dst.bottom)
    t_hit = ev.start + st.s(IMPACT_S)
    t_land = t_hit + st.s(0.35)
    y_hit, d = float(lane.y), lane.direction
    xl = x + d * THROW
    t_cross = t_hit - abs(y_hit - y0) / CROSS_SPEED * st.fps
    t_up = ev.end + 1 + st.s(0.7)
    t_off = t_up + abs(y1 - y_hit) / CROSS_SPEED * st.fps
    keys = st.walk_in(src.flow, x, y0, t_cross, WALK_SPEED)
    keys += [(t_hit, x, y_hit), (t_land, xl, y_hit + 2), (t_up, xl, y_hit + 2), (t_off, xl, y1)]
    keys += st.walk_out(dst.flow, xl, y1, t_off, WALK_SPEED)[1:]
    p = st.add(person(st.num_frames, keys, st.palette()), "victim")
    _down(st, p, ev, t_hit, t_land)
    car = _car(st, lane, x, t_hit, CAR_SPEED)
    _hazards(st, car, t_hit + st.s(0.4), ev.end)
    _clear_road(st, t_cross)


@script("crosswalk_hit", Timing(2.5, 3.5))
def crosswalk_hit(ev: AnomalyEvent, st: Stage) -> None:
    """A car that does not yield hits a pedestrian on the zebra crossing."""
    if st.scene.style == "campus":
        raise ValueError("crosswalk_hit needs a street scene (the campus has no crossing)")
    rng = st.rng
    x = rng.uniform(CROSSWALK[0] + 3, CROSSWALK[1] - 3)
    lane = st.scene.lanes[int(rng.integers(len(st.scene.lanes)))]
    _crossing_hit(ev, st, x, bool(rng.random() < 0.5), lane)


@script("jaywalk_hit", Timing(2.5, 3.5))
def jaywalk_hit(ev: AnomalyEvent, st: Stage) -> None:
    """A pedestrian crossing away from any crossing (on the campus: stepping out from between two
    parked cars) is hit by a car."""
    rng = st.rng
    if st.scene.style == "campus":
        i = int(rng.integers(len(st.scene.parked) - 1))
        gap = (st.scene.parked[i][0] + st.scene.parked[i + 1][0]) / 2  # between two parked cars
        lane = max(st.scene.lanes, key=lambda ln: ln.y)  # the lane beside the parked row
        _crossing_hit(ev, st, gap + rng.uniform(-3, 3), False, lane)
        return
    x = rng.uniform(25, 90)
    lane = st.scene.lanes[int(rng.integers(len(st.scene.lanes)))]
    _crossing_hit(ev, st, x, bool(rng.random() < 0.5), lane)


@script("cyclist_hit", Timing(2.5, 3.5))
def cyclist_hit(ev: AnomalyEvent, st: Stage) -> None:
    """A cyclist riding along the kerb side of a lane is hit from behind by a faster car."""
    rng = st.rng
    lanes = st.scene.lanes
    lane = lanes[int(rng.integers(len(lanes)))]
    d, near_side = lane.direction, lane.y == max(ln.y for ln in lanes)
    y = float(lane.y + (2 if near_side else -3))
    far, near = _walkways(st)
    way = near if near_side else far
    y_way = float(way.top if near_side else way.bottom)
    x_hit = rng.uniform(60, 100)
    t_hit = ev.start + st.s(IMPACT_S)
    t_land = t_hit + st.s(0.35)
    xl = x_hit + d * THROW
    t_up = ev.end + 1 + st.s(0.7)
    t_off = t_up + abs(y_way - y) / CROSS_SPEED * st.fps
    keys: list[Key] = st.walk_in(d, x_hit, y, t_hit, BIKE_SPEED)
    keys += [(t_land, x_hit + d * 10, y + 1), (st.num_frames + 1.0, x_hit + d * 10, y + 1)]
    st.add(thing("bicycle", st.num_frames, keys, int(rng.integers(3))), "bicycle")
    keys = st.walk_in(d, x_hit, y - 2, t_hit, BIKE_SPEED)
    keys += [(t_land, xl, y + 1), (t_up, xl, y + 1), (t_off, xl, y_way)]
    keys += st.walk_out(way.flow, xl, y_way, t_off, WALK_SPEED)[1:]
    rider = st.add(person(st.num_frames, keys, st.palette()), "victim")
    _down(st, rider, ev, t_hit, t_land)
    car = _car(st, lane, x_hit - d * 5, t_hit, CAR_SPEED * 1.25)
    _hazards(st, car, t_hit + st.s(0.4), ev.end)
    _clear_road(st, keys[0][0])
