"""Small test videos written with PyAV whose frames carry their own index: frame ``i`` is split
into 8 vertical bands, band ``b`` white when bit ``b`` of ``i`` is set, else black (robust to
compression), so any decoded frame tells which source frame it is."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

BITS = 8


def index_image(i: int, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    band = w // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            img[:, b * band:(b + 1) * band] = 255
    return img


def write_counting_video(path: Path, n: int, fps: int = 30, size: tuple[int, int] = (64, 48),
                         gop: int = 12, codec: str = "mpeg4") -> Path:
    """A ``n``-frame video (``n <= 256``) whose frames encode their 0-based index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(index_image(i % 2**BITS, size), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def frame_ids(frames: np.ndarray, n: int | None = None) -> list[int]:
    """Source indices of decoded frames ``(K, H, W, 3)``."""
    k, h, w, _ = frames.shape
    band = w // BITS
    ids = []
    for f in frames:
        grey = f.mean(axis=2)
        bits = [grey[:, b * band + band // 4:(b + 1) * band - band // 4].mean() > 128
                for b in range(BITS)]
        ids.append(sum(int(v) << b for b, v in enumerate(bits)))
    return ids
