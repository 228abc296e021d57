"""Frames decoded per source frame by the window protocol, one decode vs seeking per window.

A 60-second 30-fps video (1,800 frames, H.264 with a key frame every 250 frames, libx264's
default) is cut into the LAVAD/VERA window grid (centres every 16 frames, 10-s windows, 8
frames per window). The harness decodes the union of all window frames in one pass; the
alternative seeks to each window's frames separately.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench.common import emit
from harness.video import read_frames
from tasks.windows import WindowSpec, make_grid


def write_video(path: Path, seconds: int = 60, fps: int = 30) -> int:
    n = seconds * fps
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = 320, 240
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            img = np.full((240, 320, 3), 60, np.uint8)
            x = (i * 3) % 300
            img[100:140, x:x + 20] = 220
            img += rng.integers(0, 8, img.shape, dtype=np.uint8)
            for p in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return n


def decode_per_window(path: Path, starts: np.ndarray, ends: np.ndarray) -> int:
    """Frames decoded by a loader that opens the video, seeks to each window's first frame
    (landing on the key frame before it) and decodes forward to the window's end."""
    decoded = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        fps = float(stream.average_rate)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            container.seek(int(s / fps / tb), stream=stream, backward=True)
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts is not None and frame.pts * tb >= (e - 1) / fps - 1e-6:
                    break
    return decoded


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sixty.mp4"
        n = write_video(path)
        grid = make_grid(n, 30, WindowSpec(frames_per_window=8, sampler="arange"))
        t0 = time.perf_counter()
        one = read_frames(path, grid.all_indices())
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        seek_decoded = decode_per_window(path, grid.starts, grid.ends)
        t_seek = time.perf_counter() - t0
        ratio = one.decoded / n
        emit("decode.frames_per_source_frame.window_protocol", ratio, "ratio", "<= 1.05",
             ratio <= 1.05, seconds=round(t_one, 3), windows=len(grid))
        emit("decode.frames_per_source_frame.seek_per_window", seek_decoded / n, "ratio",
             "reference", None, seconds=round(t_seek, 3))


if __name__ == "__main__":
    main()
