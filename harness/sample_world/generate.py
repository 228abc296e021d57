"""Generating a dataset, and :func:`ensure_sample`, the cached, race-safe entry point."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.sample_world.catalog import DATASETS, VideoSpec, plan
from harness.sample_world.encode import count_frames, video_codec, write_video
from harness.sample_world.layouts import META_FILE, META_FORMAT, write_layout, write_meta
from harness.sample_world.render import render
from harness.sample_world.scene import build_scene
from harness.sample_world.stage import SCRIPTS, Stage
from harness.sample_world.traffic import normal_activity

#: Bumped whenever the generated content changes; part of the cache path.
VERSION = 1
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600.0


def frames(spec: VideoSpec, seed: int) -> Iterator[np.ndarray]:
    """The frames of one video, ``(120, 160, 3)`` uint8 RGB each, ``spec.num_frames`` of them."""
    rng = np.random.default_rng([seed, *spec.key])
    scene = build_scene(spec.style, spec.fps, rng)
    stage = Stage(scene, spec.num_frames, rng)
    actors = normal_activity(scene, spec.num_frames, rng)
    for ev in spec.events:
        SCRIPTS[ev.kind](ev, stage)
    return render(scene, actors + stage.actors, stage.effects, spec.num_frames, rng)


def generate_dataset(dataset: str, seed: int, out: Path) -> list[VideoSpec]:
    """Write all videos and annotation files of ``dataset`` into the existing folder ``out``.

    Every video is decoded again after writing; a frame count different from the declared one
    raises ``RuntimeError``. ``meta.json`` is written last.
    """
    specs = plan(dataset, seed)

    def one(spec: VideoSpec) -> None:
        path = out / spec.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        written = write_video(path, frames(spec, seed), spec.fps)
        decoded = count_frames(path)
        if not written == decoded == spec.num_frames:
            raise RuntimeError(
                f"{path}: declared {spec.num_frames} frames, encoded {written}, decoded {decoded}"
            )

    # Videos are independent (own random stream, own encoder); the encoder releases the GIL,
    # so a second thread overlaps rendering with encoding.
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        for _ in pool.map(one, specs):
            pass
    write_layout(out, dataset, specs)
    write_meta(out, dataset, seed, video_codec(), specs)
    return specs


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def is_complete(root: Path, dataset: str, seed: int) -> bool:
    """Whether ``root`` holds the finished sample ``dataset`` of ``seed`` (``meta.json`` is
    written last). Raises ``FileExistsError`` if it holds another dataset or seed."""
    try:
        meta = json.loads((root / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        return False
    if meta.get("dataset") != dataset or meta.get("seed") != seed:
        raise FileExistsError(
            f"{root} holds sample {meta.get('dataset')!r} seed {meta.get('seed')}, "
            f"not {dataset!r} seed {seed}"
        )
    return True


def default_root(dataset: str, seed: int = 0) -> Path:
    """``cache_dir()/sample_world/v{VERSION}-seed{seed}/{dataset}``."""
    from harness.paths import cache_dir

    return cache_dir() / "sample_world" / f"v{VERSION}-seed{seed}" / dataset


def _remove_stale_tmp(parent: Path, name: str) -> None:
    """Remove temp folders of generations that died more than an hour ago."""
    now = time.time()
    for p in parent.glob(f"{_TMP_PREFIX}{name}-*"):
        try:
            if now - p.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def ensure_sample(dataset: str, seed: int = 0, root: Path | None = None) -> Path:
    """Root of ``dataset``'s sample split in that dataset's native layout; generated on first use.

    ``root`` defaults to :func:`default_root`. The dataset is generated into a temporary folder
    beside ``root`` and moved into place with one ``os.rename``, so ``root`` is either absent or
    complete; when several processes race, the first rename wins and the others discard their
    copy. Same ``seed`` => same annotation files and same decoded frames.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown sample dataset {dataset!r}; expected one of {DATASETS}")
    target = Path(root) if root is not None else default_root(dataset, seed)
    if is_complete(target, dataset, seed):
        return target
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists but is not a complete sample dataset")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(target.parent, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        generate_dataset(dataset, seed, tmp)
        try:
            os.rename(tmp, target)  # atomic; fails if another process already put it there
        except OSError:
            if not is_complete(target, dataset, seed):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
