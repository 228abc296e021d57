"""What each dataset contains: its videos, their names, lengths, labels and anomaly intervals.

:func:`plan` turns ``(dataset, seed)`` into a list of :class:`VideoSpec`, deterministically.
Intervals are 0-based frame indices with inclusive ends. Anomalous test videos have 1 or 2
intervals covering a minority (< 50 %) of the video; train videos carry anomalies too, but the
written layouts give them video-level labels only.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass

import numpy as np

from harness.sample_world import accidents as _accidents  # noqa: F401  (registers scripts)
from harness.sample_world import events as _events  # noqa: F401
from harness.sample_world import hazards as _hazards  # noqa: F401
from harness.sample_world.stage import TIMINGS, AnomalyEvent

#: Frame-level VAD datasets (videos + temporal annotations), planned here.
VAD_DATASETS: tuple[str, ...] = ("ucf_crime", "xd_violence", "complexvad")
#: Language-side datasets -> the module that plans and writes them (``plan(seed)``,
#: ``write_layout(root, seed, specs)``).
LANGUAGE_MODULES: dict[str, str] = {
    "vru_accident": "harness.sample_world.vru",
    "hivau": "harness.sample_world.hivau",
    "vad_reasoning": "harness.sample_world.vad_reasoning",
    "vane": "harness.sample_world.vane",
}
LANGUAGE_DATASETS: tuple[str, ...] = tuple(LANGUAGE_MODULES)
DATASETS: tuple[str, ...] = VAD_DATASETS + LANGUAGE_DATASETS

#: Anomaly kind -> UCF-Crime class.
UCF_CLASSES: dict[str, str] = {
    "fight": "Fighting",
    "assault": "Assault",
    "abuse": "Abuse",
    "run_against_flow": "Robbery",
    "chase": "Arrest",
    "vehicle_on_sidewalk": "RoadAccidents",
    "car_crash": "RoadAccidents",
    "fire": "Arson",
    "explosion": "Explosion",
    "shooting": "Shooting",
    "abandoned_object": "Burglary",
}
#: Anomaly kind -> XD-Violence label code.
XD_CODES: dict[str, str] = {
    "fight": "B1",
    "shooting": "B2",
    "riot": "B4",
    "abuse": "B5",
    "car_crash": "B6",
    "vehicle_on_sidewalk": "B6",
    "explosion": "G",
}


@dataclass(frozen=True)
class DatasetPlan:
    """Recipe of one dataset: test anomalies as ``(kind, number of intervals)``, train kinds."""

    fps: int
    style: str
    test: tuple[tuple[str, int], ...]
    train: tuple[str, ...]
    test_normal: int = 8
    train_normal: int = 6


PLANS: dict[str, DatasetPlan] = {
    "ucf_crime": DatasetPlan(
        30,
        "street",
        test=(
            ("fight", 2),
            ("assault", 1),
            ("run_against_flow", 2),
            ("vehicle_on_sidewalk", 1),
            ("fire", 1),
            ("explosion", 1),
            ("shooting", 2),
            ("abandoned_object", 1),
        ),
        train=("fight", "abuse", "chase", "car_crash", "explosion", "abandoned_object"),
    ),
    "xd_violence": DatasetPlan(
        24,
        "dusk",
        test=(
            ("fight", 2),
            ("shooting", 1),
            ("riot", 1),
            ("abuse", 1),
            ("car_crash", 1),
            ("explosion", 2),
            ("vehicle_on_sidewalk", 1),
            ("fight", 1),
        ),
        train=("fight", "shooting", "riot", "abuse", "car_crash", "explosion"),
    ),
    "complexvad": DatasetPlan(
        30,
        "campus",
        test=(
            ("push", 1),
            ("exchange", 1),
            ("chase", 2),
            ("fight", 1),
            ("fall", 1),
            ("skateboard", 2),
            ("vehicle_on_sidewalk", 1),
            ("abandoned_object", 1),
        ),
        train=("push", "exchange", "chase", "fight", "fall", "skateboard"),
    ),
}


@dataclass(frozen=True)
class VideoSpec:
    """One video of a dataset.

    Attributes:
        relpath: file path relative to the dataset root (``/`` separated).
        name: native video name without extension.
        split: ``"test"`` or ``"train"``.
        label: native label: UCF class or ``"Normal"``; XD code (``"B1-0-0"``) or ``"A"``;
            ComplexVAD ``"anomalous"`` or ``"normal"``.
        kind: anomaly kind, ``None`` for normal videos.
        num_frames, fps: length in frames and frame rate.
        style: scene style (see ``scene.py``).
        events: anomalies, frames 0-based, ends inclusive.
        key: random-stream key of the video (with the seed).
        frame_step: 0: the video is written as an MP4 file at ``relpath``; ``k > 0``: as a folder
            ``relpath`` of JPEG frames ``frame_0000.jpg, ...`` holding every ``k``-th rendered
            frame (0, k, 2k, ...), i.e. ``stored_frames`` frames at ``fps / k`` frames a second.
        effect_scale: size factor of the anomalies' visual effects (fire, fireball, smoke,
            muzzle flashes, hazard lights; :class:`~harness.sample_world.actors.Effect`);
            positions and timing are unchanged, so the texts written about them hold.
    """

    relpath: str
    name: str
    split: str
    label: str
    kind: str | None
    num_frames: int
    fps: int
    style: str
    events: tuple[AnomalyEvent, ...]
    key: tuple[int, ...]
    frame_step: int = 0
    effect_scale: float = 1.0

    @property
    def anomalous(self) -> bool:
        return self.kind is not None

    @property
    def stored_frames(self) -> int:
        """Frames in the written file or folder."""
        step = self.frame_step or 1
        return (self.num_frames + step - 1) // step

    @property
    def stored_fps(self) -> float:
        """Frame rate of what is written (an int where it divides evenly)."""
        step = self.frame_step or 1
        return self.fps // step if self.fps % step == 0 else self.fps / step


def dataset_id(dataset: str) -> int:
    """A stable integer for ``dataset`` (random-stream key)."""
    return zlib.crc32(dataset.encode())


def place_events(
    kind: str, count: int, num_frames: int, fps: int, rng: np.random.Generator
) -> tuple[AnomalyEvent, ...]:
    """Choose ``count`` intervals of ``kind`` in a video of ``num_frames`` frames.

    Durations follow the kind's :class:`~harness.sample_world.stage.Timing`, shrunk if needed
    so that together they cover at most 45 % of the video; at least 0.8 s is left before each
    interval and between intervals. ``until_end`` kinds get one interval ending at the last frame.
    """
    timing = TIMINGS[kind]
    margin = int(0.8 * fps)
    durs = [int(rng.uniform(timing.min_s, timing.max_s) * fps) for _ in range(count)]
    scale = min(1.0, 0.45 * num_frames / sum(durs))
    durs = [max(int(d * scale), int(1.5 * fps)) for d in durs]
    if timing.until_end:
        if count != 1:
            raise ValueError(f"{kind} runs to the end of the video; it can only occur once")
        return (AnomalyEvent(kind, num_frames - durs[0], num_frames - 1),)
    events = []
    seg = num_frames // count
    for i, dur in enumerate(durs):
        lo = i * seg + margin
        hi = (i + 1) * seg - dur - (margin if i == count - 1 else margin // 2)
        if hi < lo:
            raise ValueError(f"no room for {count} x {kind} in {num_frames} frames")
        start = int(rng.integers(lo, hi + 1))
        events.append(AnomalyEvent(kind, start, start + dur - 1))
    return tuple(events)


def place_one(
    kind: str,
    num_frames: int,
    fps: int,
    rng: np.random.Generator,
    before_s: float = 0.8,
    after_s: float = 0.8,
) -> AnomalyEvent:
    """One interval of ``kind`` (duration from its timing) with at least ``before_s`` seconds of
    video before it and ``after_s`` after it."""
    timing = TIMINGS[kind]
    dur = int(rng.uniform(timing.min_s, timing.max_s) * fps)
    lo, hi = int(before_s * fps), num_frames - dur - int(after_s * fps)
    if hi < lo:
        raise ValueError(f"no room for {kind} in {num_frames} frames")
    start = int(rng.integers(lo, hi + 1))
    return AnomalyEvent(kind, start, start + dur - 1)


def _xd_clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}-{s // 60 % 60:02d}-{s % 60:02d}"


def plan(dataset: str, seed: int = 0) -> list[VideoSpec]:
    """All videos of ``dataset`` for ``seed``: test videos first, then train videos."""
    if dataset in LANGUAGE_MODULES:
        specs: list[VideoSpec] = importlib.import_module(LANGUAGE_MODULES[dataset]).plan(seed)
        return specs
    if dataset not in PLANS:
        raise ValueError(f"unknown sample dataset {dataset!r}; expected one of {DATASETS}")
    p = PLANS[dataset]
    did = dataset_id(dataset)
    rng = np.random.default_rng([seed, did, 0])
    # (split, kind, interval count) in a fixed order; normals have kind None
    items: list[tuple[str, str | None, int]] = [("test", k, n) for k, n in p.test]
    items += [("test", None, 0)] * p.test_normal
    items += [("train", k, 1) for k in p.train] + [("train", None, 0)] * p.train_normal
    if dataset == "complexvad":  # neutral names: shuffle so the index does not give the label
        order = rng.permutation(len(items))
        items = [items[i] for i in order if items[i][0] == "test"] + [
            items[i] for i in order if items[i][0] == "train"
        ]
    specs = []
    counters: dict[tuple[str, str], int] = {}
    clock = {"test": 10.0, "train": 10.0}
    for index, (split, kind, count) in enumerate(items):
        lo, hi = (8.0, 10.0) if count == 2 else (6.0, 8.0)
        num_frames = int(rng.uniform(lo, hi) * p.fps)
        events = place_events(kind, count, num_frames, p.fps, rng) if kind else ()
        n = counters[(split, kind or "")] = counters.get((split, kind or ""), 0) + 1
        if dataset == "ucf_crime":
            if kind is None:
                folder = "Testing" if split == "test" else "Training"
                sep = "_" if split == "test" else ""
                num = n if split == "test" else n + 9
                name = f"Normal_Videos{sep}{num:03d}_x264"
                relpath, label = f"{folder}_Normal_Videos_Anomaly/{name}.mp4", "Normal"
            else:
                label = UCF_CLASSES[kind]
                cls_n = counters[(split, label)] = counters.get((split, label), 0) + 1
                name = f"{label}{cls_n if split == 'test' else cls_n + 9:03d}_x264"
                relpath = f"{label}/{name}.mp4"
        elif dataset == "xd_violence":
            label = f"{XD_CODES[kind]}-0-0" if kind else "A"
            movie = "SampleWorld" if split == "test" else "SampleWorldTrain"
            t0 = clock[split]
            clock[split] = t0 + num_frames / p.fps + 10.0
            span = f"{_xd_clock(t0)}_{_xd_clock(t0 + num_frames / p.fps + 1)}"
            name = f"{movie}.s{seed}__#{span}_label_{label}"
            relpath = f"{'videos' if split == 'test' else 'train'}/{name}.mp4"
        else:
            label = "anomalous" if kind else "normal"
            k = sum(1 for s in specs if s.split == split) + 1
            name = f"{split}_{k:03d}"
            relpath = f"videos/{name}.mp4"
        specs.append(
            VideoSpec(
                relpath,
                name,
                split,
                label,
                kind,
                num_frames,
                p.fps,
                p.style,
                events,
                (did, 0 if split == "test" else 1, index),
            )
        )
    return specs
