"""Baselines that need no VLM.

* ``constant``: every frame scores ``value``. Its AUC is 0.5 by construction; the harness uses
  it to measure its own overhead per video (``make bench``). It reads no video.
* ``frame_diff``: a plain frame-difference detector. Each frame scores the mean absolute
  difference of its grey image to the previous frame's (the first frame copies the second's),
  computed at a small pixel budget and smoothed with a centred moving average of ``window``
  frames. A sanity floor: pixels alone, no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from methods.base import Method, MethodNeeds, RunContext
from tasks.base import VideoSample


@dataclass
class ConstantSettings:
    value: float = 0.0


class ConstantScore(Method):
    name = "constant"
    description = "Every frame gets the same score (AUC 0.5; measures harness overhead)"
    needs = MethodNeeds(engine=False, video=False)
    Settings = ConstantSettings

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        value = float(self.settings.value)
        return {"video_id": sample.video_id, "num_frames": sample.num_frames,
                "scores": {"values": [value], "counts": [sample.num_frames]}}


@dataclass
class FrameDiffSettings:
    max_pixels: int = 64 * 48
    window: int = 9


def frame_difference(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 -> ``(T,)`` mean absolute grey difference to the previous frame."""
    grey = frames.astype(np.float32).mean(axis=3)
    if len(grey) < 2:
        return np.zeros(len(grey))
    d = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2)).astype(np.float64)
    return np.concatenate(([d[0]], d))


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with edge replication; ``window`` 1 returns ``x``."""
    if window <= 1:
        return np.asarray(x, dtype=np.float64)
    pad = window // 2
    padded = np.pad(np.asarray(x, dtype=np.float64), (pad, window - 1 - pad), mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


class FrameDiff(Method):
    name = "frame_diff"
    description = "Mean absolute frame difference (pixels only, no model)"
    needs = MethodNeeds(engine=False)
    Settings = FrameDiffSettings

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        cfg: FrameDiffSettings = self.settings
        frames = ctx.read(sample, np.arange(sample.num_frames), max_pixels=cfg.max_pixels)
        scores = moving_average(frame_difference(frames.frames), cfg.window)
        return {"video_id": sample.video_id, "num_frames": sample.num_frames,
                "scores": scores.tolist(),
                "frames_clamped": frames.clamped}
