"""Video decoding with PyAV: frame selection by index, one decode per video, pixel budgets.

Conventions
-----------
* Frame indices are 0-based positions in decode order (what OpenCV's frame counter and the
  LAVAD/VERA frame dumps number).
* Frames come back as ``uint8`` RGB arrays of shape ``(K, H, W, 3)``, in the order of the sorted
  unique requested indices; :meth:`Frames.take` maps any index list onto them.
* ``max_pixels`` bounds ``H * W`` of the returned frames (aspect ratio kept, sides rounded down
  to even numbers); ``None`` keeps the source size. Frames are never upscaled.

All windows of a video are served from one sequential decode: callers pass the union of the
indices they need (``WindowGrid.all_indices()``) and slice the result. Decoding stops after the
largest requested index. For sparse requests on long videos (say 16 frames of an hour of
footage) ``read_frames(..., strategy="seek")`` seeks to the key frame before each index instead.

A *folder of frame images* (VANE-Bench stores clips this way) is read like a video: its
``.jpg``/``.jpeg``/``.png`` files in name order are frames ``0 .. N-1``.

Failures (missing, empty, corrupted or unreadable files) raise :class:`VideoError`, which names
the file and the reason; the runner turns it into an error record and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

Strategy = Literal["auto", "sequential", "seek"]


class VideoError(RuntimeError):
    """A video could not be read. ``path`` and ``reason`` are kept for the error record."""

    def __init__(self, path: Path | str | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path) if path is not None else None
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    """Container metadata. ``num_frames`` is the stream's frame count (0 when unknown)."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int


@dataclass
class Frames:
    """Decoded frames of one video.

    Attributes:
        indices: ``(K,)`` int64 sorted unique source-frame indices.
        frames: ``(K, H, W, 3)`` uint8 RGB.
        decoded: how many frames the decoder produced to serve the request (cost measure).
        num_decodable: frames in the file if the decode reached its end, else ``None``.
        clamped: requested indices past the end of the file, served by the last frame.
    """

    indices: np.ndarray
    frames: np.ndarray
    decoded: int
    num_decodable: int | None = None
    clamped: int = 0

    def take(self, wanted: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames for ``wanted`` indices (repeats allowed) -> ``(len(wanted), H, W, 3)``."""
        pos = np.searchsorted(self.indices, np.asarray(wanted, dtype=np.int64))
        pos = np.minimum(pos, len(self.indices) - 1)
        if not np.array_equal(self.indices[pos], np.asarray(wanted, dtype=np.int64)):
            missing = sorted(set(np.asarray(wanted).tolist()) - set(self.indices.tolist()))
            raise KeyError(f"frames {missing[:5]} were not decoded")
        return self.frames[pos]


def target_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """(W, H) scaled down to ``W * H <= max_pixels`` keeping the aspect ratio, even sides."""
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoError(path, "file is empty")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(path, f"cannot open: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(path, "no video stream")
    return container


def probe(path: Path | str) -> VideoInfo:
    """Read container metadata without decoding."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        return VideoInfo(path, int(stream.frames or 0), fps, stream.width, stream.height)
    finally:
        container.close()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in name order (frame ``i`` = ``i``-th file)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_folder(folder: Path, wanted: np.ndarray, max_pixels: int | None) -> Frames:
    from PIL import Image, UnidentifiedImageError

    files = frame_files(folder)
    if not files:
        raise VideoError(folder, "frame folder holds no .jpg/.jpeg/.png images")
    out = []
    clamped = 0
    for idx in wanted.tolist():
        if idx >= len(files):
            clamped += 1
        f = files[min(idx, len(files) - 1)]
        try:
            with Image.open(f) as im:
                rgb = im.convert("RGB")
                w, h = target_size(rgb.width, rgb.height, max_pixels)
                if (w, h) != (rgb.width, rgb.height):
                    rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
                out.append(np.asarray(rgb, dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as exc:
            raise VideoError(f, f"cannot read frame image: {exc}") from exc
    if len({a.shape for a in out}) > 1:
        raise VideoError(folder, "frame images differ in size")
    frames = np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8)
    return Frames(wanted, frames, decoded=len(out), num_decodable=len(files), clamped=clamped)


def count_frames(path: Path | str) -> int:
    """Number of decodable frames: the stream header's count, or a full decode without it
    (for a frame folder: its number of images)."""
    if Path(path).is_dir():
        return len(frame_files(Path(path)))
    info = probe(path)
    if info.num_frames > 0:
        return info.num_frames
    return read_frames(path, [], strategy="sequential", count_all=True).decoded


class _Converter:
    """RGB conversion (and resizing) with one reused swscale context: building a converter per
    frame costs milliseconds, reusing it a tenth of that."""

    def __init__(self) -> None:
        self._fmt = av.video.reformatter.VideoReformatter()

    def __call__(self, frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
        w, h = size if size is not None else (None, None)
        out = self._fmt.reformat(frame, width=w, height=h, format="rgb24")
        return out.to_ndarray()  # type: ignore[no-any-return]


def _sequential(
    container: av.container.InputContainer,
    path: Path,
    wanted: np.ndarray,
    max_pixels: int | None,
    count_all: bool,
) -> Frames:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    convert = _Converter()
    size = None
    out: list[np.ndarray] = []
    got: list[int] = []
    last = int(wanted[-1]) if len(wanted) else -1
    pos = 0  # position in `wanted`
    decoded = 0
    reached_end = True
    previous: av.VideoFrame | None = None
    try:
        for frame in container.decode(stream):
            previous = frame
            idx = decoded
            decoded += 1
            if pos < len(wanted) and wanted[pos] == idx:
                if size is None:
                    size = target_size(frame.width, frame.height, max_pixels)
                    size = None if size == (frame.width, frame.height) else size
                out.append(convert(frame, size))
                got.append(idx)
                pos += 1
            if idx >= last and not count_all:
                reached_end = False
                break
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(path, f"decode failed after {decoded} frames: {exc}") from exc
    if decoded == 0:
        raise VideoError(path, "no decodable frames")
    clamped = len(wanted) - pos
    if clamped and previous is not None:
        # Indices past the end of the file (annotation counts can exceed the decodable frames
        # by a few): served by the last decoded frame, and counted in ``clamped``.
        if size is None:
            size = target_size(previous.width, previous.height, max_pixels)
            size = None if size == (previous.width, previous.height) else size
        last_frame = convert(previous, size)
        for idx in wanted[pos:].tolist():
            out.append(last_frame)
            got.append(idx)
    return Frames(
        indices=np.asarray(got, dtype=np.int64),
        frames=np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8),
        decoded=decoded,
        num_decodable=decoded if reached_end else None,
        clamped=clamped,
    )


def _seek(
    container: av.container.InputContainer, path: Path, wanted: np.ndarray, max_pixels: int | None
) -> Frames:
    """Seek to the key frame before each wanted index, decode forward to it (sparse requests)."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    if not rate or stream.time_base is None:
        raise VideoError(path, "cannot seek: stream has no frame rate or time base")
    fps = float(rate)
    tb = float(stream.time_base)
    start_pts = stream.start_time or 0
    out: list[np.ndarray] = []
    decoded = 0
    clamped = 0
    size: tuple[int, int] | None = None
    convert = _Converter()
    for idx in wanted.tolist():
        target_pts = start_pts + int(round(idx / fps / tb))
        try:
            container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            hit = last = None
            for frame in container.decode(stream):
                decoded += 1
                last = frame
                if frame.pts is None:
                    raise VideoError(path, "cannot seek: frames carry no timestamps")
                if frame.pts >= target_pts - 0.5 / fps / tb:
                    hit = frame
                    break
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoError(path, f"decode failed near frame {idx}: {exc}") from exc
        if hit is None:  # past the end: the last frame, counted, as in a sequential decode
            if last is None:
                raise VideoError(path, f"frame {idx} is past the end of the file")
            hit = last
            clamped += 1
        if size is None:
            size = target_size(hit.width, hit.height, max_pixels)
        out.append(convert(hit, size))
    return Frames(np.asarray(wanted, np.int64), np.stack(out), decoded, clamped=clamped)


def read_frames(
    path: Path | str,
    indices: Sequence[int] | np.ndarray,
    max_pixels: int | None = None,
    strategy: Strategy = "auto",
    count_all: bool = False,
) -> Frames:
    """Decode the frames at ``indices`` (any order, repeats allowed) in one pass.

    Args:
        path: video file, or a folder of frame images.
        indices: 0-based source-frame indices.
        max_pixels: pixel budget per returned frame (``H * W``), or ``None``.
        strategy: ``"sequential"`` decodes from the start to the largest index once;
            ``"seek"`` seeks per index; ``"auto"`` seeks only when fewer than 1 in 64 frames
            up to the largest index are wanted.
        count_all: keep decoding to the end of the file (to count frames).

    Raises:
        VideoError: the file is missing, empty, corrupted, or has no video stream.
    """
    path = Path(path)
    wanted = np.unique(np.asarray(indices, dtype=np.int64))
    if len(wanted) and wanted[0] < 0:
        raise ValueError(f"negative frame index {int(wanted[0])}")
    if path.is_dir():
        return _read_folder(path, wanted, max_pixels)
    container = _open(path)
    try:
        if strategy == "auto":
            span = int(wanted[-1]) + 1 if len(wanted) else 0
            strategy = "seek" if len(wanted) and span > 64 * len(wanted) else "sequential"
        if strategy == "seek" and not count_all:
            return _seek(container, path, wanted, max_pixels)
        return _sequential(container, path, wanted, max_pixels, count_all)
    finally:
        container.close()
