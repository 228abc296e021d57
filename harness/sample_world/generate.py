"""Generating a dataset, and :func:`ensure_sample`, the cached, race-safe entry point."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from harness.sample_world.catalog import DATASETS, LANGUAGE_MODULES, VideoSpec, plan
from harness.sample_world.encode import count_frames, video_codec, write_frames, write_video
from harness.sample_world.layouts import META_FILE, META_FORMAT, write_layout, write_meta
from harness.sample_world.observe import staged
from harness.sample_world.render import render

#: Bumped whenever the generated content changes; part of the cache path.
VERSION = 1
_TMP_PREFIX = ".tmp-"
_LOCK_PREFIX = ".lock-"
_STALE_TMP_S = 3600.0


def frames(spec: VideoSpec, seed: int) -> Iterator[np.ndarray]:
    """The frames of one video, ``(120, 160, 3)`` uint8 RGB each, ``spec.num_frames`` of them."""
    st = staged(spec, seed)
    return render(st.scene, st.actors, st.stage.effects, spec.num_frames, st.rng)


def write_one(spec: VideoSpec, seed: int, out: Path) -> None:
    """Render and encode one video under ``out`` (an MP4 file, or a folder of JPEG frames if
    ``spec.frame_step``); check that it reads back with the declared frame count."""
    path = out / spec.relpath
    if spec.frame_step:
        picked = (f for i, f in enumerate(frames(spec, seed)) if i % spec.frame_step == 0)
        written = write_frames(path, picked)
        decoded = len(list(path.glob("frame_*.jpg")))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = write_video(path, frames(spec, seed), spec.fps)
        decoded = count_frames(path)
    if not written == decoded == spec.stored_frames:
        raise RuntimeError(
            f"{path}: declared {spec.stored_frames} frames, encoded {written}, decoded {decoded}"
        )


def workers() -> int:
    """Processes used for generation: ``VAD_EVAL_SAMPLE_WORKERS`` if set (1 = in-process only),
    else the usable CPUs, at most 4."""
    env = os.environ.get("VAD_EVAL_SAMPLE_WORKERS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _partition(specs: list[VideoSpec], n: int) -> list[list[int]]:
    """Spec indices in ``n`` groups of about equal total length (longest first, greedy)."""
    groups: list[list[int]] = [[] for _ in range(n)]
    load = [0] * n
    for i in sorted(range(len(specs)), key=lambda i: (-specs[i].num_frames, i)):
        g = load.index(min(load))
        groups[g].append(i)
        load[g] += specs[i].num_frames
    return [g for g in groups if g]


_WORKER_CODE = (
    "import sys; from harness.sample_world.generate import worker_main; worker_main(sys.argv[1:])"
)


def worker_main(argv: list[str]) -> None:
    """Entry point of a worker process: ``DATASET SEED OUT INDEX,INDEX,...``."""
    dataset, seed, out, indices = argv
    specs = plan(dataset, int(seed))
    for i in indices.split(","):
        write_one(specs[int(i)], int(seed), Path(out))


def generate_dataset(
    dataset: str, seed: int, out: Path, n_workers: int | None = None
) -> list[VideoSpec]:
    """Write all videos (or frame folders) and annotation files of ``dataset`` into the existing
    folder ``out``.

    Videos are independent (own random stream, own encoder), so they are split between this
    process and ``n_workers - 1`` worker subprocesses (default :func:`workers`); the output does
    not depend on the split. Workers are plain ``python -c`` subprocesses, so callers need no
    ``if __name__ == "__main__"`` guard. Every video is decoded again after writing; a frame
    count other than the declared one raises ``RuntimeError``. ``meta.json`` is written last.
    """
    specs = plan(dataset, seed)
    groups = _partition(specs, min(n_workers or workers(), len(specs)))
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    env["VAD_EVAL_SAMPLE_WORKERS"] = "1"
    names = [",".join(map(str, group)) for group in groups]
    with ExitStack() as stack:
        # worker stderr goes to files (a full pipe could block a worker); shown on failure
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in names[1:]]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for name, log in zip(names[1:], logs, strict=True):
                args = [dataset, str(seed), str(out), name]
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _WORKER_CODE, *args],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                )
            for i in groups[0]:
                write_one(specs[i], seed, out)
        except BaseException:
            for p in procs:
                p.kill()
            raise
        finally:
            for p in procs:
                p.wait()
        for p, name, log in zip(procs, names[1:], logs, strict=True):
            if p.returncode != 0:
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"sample-world worker for videos {name} failed:\n{err}")
    if dataset in LANGUAGE_MODULES:
        importlib.import_module(LANGUAGE_MODULES[dataset]).write_layout(out, seed, specs)
    else:
        write_layout(out, dataset, specs)
    write_meta(out, dataset, seed, video_codec(), specs)
    return specs


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


def is_stale(root: Path, dataset: str, seed: int) -> bool:
    """Whether ``root`` is a finished sample of ``dataset`` and ``seed`` written by an earlier
    plan (its ``meta.json`` lists other videos than :func:`plan` gives now: names, labels,
    frame counts or effect scales, e.g. a split added since); :func:`ensure_sample` regenerates
    such a folder."""
    meta = json.loads((root / META_FILE).read_text(encoding="utf-8"))
    written = [(v.get("name"), v.get("label"), v.get("num_frames"), v.get("effect_scale", 1.0))
               for v in meta.get("videos", [])]
    return written != [(s.name, s.label, s.stored_frames, s.effect_scale)
                       for s in plan(dataset, seed)]


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


@contextmanager
def _generation_lock(parent: Path, name: str) -> Iterator[None]:
    """Advisory ``flock`` beside the target, so that concurrent callers wait for one generation
    instead of repeating it. Only an optimisation: where locking is unavailable the atomic rename
    in :func:`ensure_sample` still keeps the result correct (work may then be duplicated)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    path = parent / f"{_LOCK_PREFIX}{name}"
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            locked = True
        except OSError:  # e.g. a filesystem without locks
            locked = False
        try:
            yield
        finally:
            # The lock file only exists during a generation. Removing it while others wait on
            # it is harmless: they re-check the target once they hold the lock, and a caller
            # arriving meanwhile at worst repeats the work (the rename keeps that correct).
            path.unlink(missing_ok=True)
            if locked:
                fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_sample(dataset: str, seed: int = 0, root: Path | None = None) -> Path:
    """Root of ``dataset``'s sample split in that dataset's native layout; generated on first use.

    ``root`` defaults to :func:`default_root`. The dataset is generated into a temporary folder
    beside ``root`` and moved into place with one ``os.rename``, so ``root`` is either absent or
    complete. Concurrent callers normally wait on a lock for the first one's result; if they
    do generate at the same time, the first rename wins and the others discard their copy.
    Same ``seed`` => same annotation files and same decoded frames.

    Raises:
        ValueError: unknown ``dataset``.
        FileExistsError: ``root`` is a non-empty folder that is not this dataset and seed.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown sample dataset {dataset!r}; expected one of {DATASETS}")
    target = Path(root) if root is not None else default_root(dataset, seed)
    if is_complete(target, dataset, seed):
        if not is_stale(target, dataset, seed):
            return target
        with _generation_lock(target.parent, target.name):
            if is_complete(target, dataset, seed) and is_stale(target, dataset, seed):
                old = target.with_name(f"{_TMP_PREFIX}{target.name}-stale-{os.getpid()}")
                os.rename(target, old)  # then removed; readers of the old folder keep theirs
                shutil.rmtree(old, ignore_errors=True)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists but is not a complete sample dataset")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _generation_lock(target.parent, target.name):
        if is_complete(target, dataset, seed) and not is_stale(target, dataset, seed):
            return target  # finished by another process while we waited
        _remove_stale_tmp(target.parent, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{target.name}-", dir=target.parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
            generate_dataset(dataset, seed, tmp)
            try:
                os.rename(tmp, target)  # atomic; fails if another process put it there first
            except OSError:
                if not is_complete(target, dataset, seed):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
