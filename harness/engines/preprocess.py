"""Qwen2-VL / Qwen2.5-VL visual preprocessing in NumPy + PIL (no torchvision needed).

The transformers processors for these models default to torchvision-based image/video
processors. This module reproduces their computation for RGB ``uint8`` frames:

1. resize (PIL bicubic) so that height and width are multiples of ``patch * merge`` (28) and
   ``min_pixels <= H*W <= max_pixels``, keeping the aspect ratio (:func:`smart_resize`);
2. rescale to [0, 1] and normalise with the processor's mean/std -> ``float32 (T, 3, H, W)``;
3. pad the frame count to a multiple of ``temporal_patch_size`` by repeating the last frame
   (an image is one frame, so it is repeated), then cut into ``patch x patch x temporal`` cubes
   ordered the way the vision tower expects (row-major over 2x2 merge windows):
   ``pixel_values (grid_t*grid_h*grid_w, 3*temporal*patch*patch) float32`` and
   ``grid_thw = (grid_t, grid_h, grid_w)`` in patches.

The language model sees ``grid_t*grid_h*grid_w / merge**2`` placeholder tokens per visual.
``tests/test_hf_engine.py`` checks images against ``Qwen2VLImageProcessorPil``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class QwenVisionSpec:
    """Preprocessing settings (from ``preprocessor_config.json``; pixels are H*W per frame)."""

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    video_max_pixels: int = 28 * 28 * 768

    @property
    def factor(self) -> int:
        """Side lengths are multiples of this (patch * merge = 28)."""
        return self.patch_size * self.merge_size

    @classmethod
    def from_model_dir(cls, path: Path, max_pixels: int | None = None) -> QwenVisionSpec:
        """Read ``preprocessor_config.json`` if present; ``max_pixels`` overrides both caps.

        Without an override, images use the config's cap and video frames
        ``min(config cap, 768*28*28)`` (Qwen's video default). Frames are never upscaled past
        ``min_pixels`` = the config's image minimum (the harness already sized them).
        """
        cfg: dict = {}
        f = path / "preprocessor_config.json"
        if f.is_file():
            cfg = json.loads(f.read_text())
        size = cfg.get("size") or {}
        base = cls()
        min_px = int(cfg.get("min_pixels") or size.get("shortest_edge") or base.min_pixels)
        max_px = int(cfg.get("max_pixels") or size.get("longest_edge") or base.max_pixels)
        return cls(
            patch_size=int(cfg.get("patch_size", base.patch_size)),
            merge_size=int(cfg.get("merge_size", base.merge_size)),
            temporal_patch_size=int(cfg.get("temporal_patch_size", base.temporal_patch_size)),
            image_mean=tuple(cfg.get("image_mean", base.image_mean)),  # type: ignore[arg-type]
            image_std=tuple(cfg.get("image_std", base.image_std)),  # type: ignore[arg-type]
            min_pixels=min_px,
            max_pixels=max_pixels or max_px,
            video_max_pixels=max_pixels or min(max_px, base.video_max_pixels),
        )


@dataclass
class VisualInput:
    """One preprocessed image or video.

    ``pixel_values``: ``float32 (grid_t*grid_h*grid_w, 3*temporal*patch*patch)``;
    ``grid_thw``: grid in patches; ``num_tokens``: LM placeholder tokens it occupies.
    """

    pixel_values: np.ndarray
    grid_thw: tuple[int, int, int]
    merge_size: int

    @property
    def num_tokens(self) -> int:
        t, h, w = self.grid_thw
        return t * h * w // (self.merge_size**2)


def smart_resize(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """Target ``(h, w)``: multiples of ``factor``, area in ``[min_pixels, max_pixels]``,
    aspect ratio kept as well as rounding allows (Qwen's resizing rule)."""
    if min(height, width) <= 0:
        raise ValueError(f"empty frame {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of a {height}x{width} frame exceeds 200")
    h = round(height / factor) * factor
    w = round(width / factor) * factor
    if h * w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / scale / factor) * factor)
        w = max(factor, math.floor(width / scale / factor) * factor)
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * scale / factor) * factor
        w = math.ceil(width * scale / factor) * factor
    return h, w


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic-resize ``uint8 (T, H, W, 3)`` frames to ``(T, height, width, 3)`` with PIL."""
    if frames.shape[1:3] == (height, width):
        return frames
    out = [
        np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC))
        for f in frames
    ]
    return np.stack(out)


def normalize_frames(
    frames: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
) -> np.ndarray:
    """``uint8 (T, H, W, 3)`` -> ``float32 (T, 3, H, W)``: ``(x / 255 - mean) / std``."""
    x = (frames.astype(np.float64) * (1.0 / 255.0)).astype(np.float32)
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    x = (x - m) / s
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def patchify(
    x: np.ndarray, patch: int, merge: int, temporal: int
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Cut ``float32 (T, C, H, W)`` into the vision tower's flat patch sequence.

    Pads T to a multiple of ``temporal`` by repeating the last frame. Rows are ordered
    ``(t, h_block, w_block, h_in_block, w_in_block)`` with blocks of ``merge x merge`` patches;
    each row holds ``(C, temporal, patch, patch)`` values, C-major.
    """
    t, c, h, w = x.shape
    if h % (patch * merge) or w % (patch * merge):
        raise ValueError(f"frame {h}x{w} is not a multiple of {patch * merge}")
    if pad := -t % temporal:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)], axis=0)
        t += pad
    gt, gh, gw = t // temporal, h // patch, w // patch
    v = x.reshape(gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    # -> (gt, gh/merge, gw/merge, merge_h, merge_w, C, temporal, patch_h, patch_w)
    v = v.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = np.ascontiguousarray(v).reshape(gt * gh * gw, c * temporal * patch * patch)
    return flat, (gt, gh, gw)


def _process(frames: np.ndarray, spec: QwenVisionSpec, max_pixels: int) -> VisualInput:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    h, w = smart_resize(frames.shape[1], frames.shape[2], spec.factor, spec.min_pixels, max_pixels)
    x = normalize_frames(resize_frames(frames, h, w), spec.image_mean, spec.image_std)
    pv, grid = patchify(x, spec.patch_size, spec.merge_size, spec.temporal_patch_size)
    return VisualInput(pv, grid, spec.merge_size)


def qwen_image(image: np.ndarray, spec: QwenVisionSpec) -> VisualInput:
    """One RGB ``uint8 (H, W, 3)`` image -> :class:`VisualInput` with ``grid_t == 1``."""
    return _process(image[None], spec, spec.max_pixels)


def qwen_video(frames: np.ndarray, spec: QwenVisionSpec) -> VisualInput:
    """RGB ``uint8 (T, H, W, 3)`` frames (all the same size) -> :class:`VisualInput`."""
    return _process(frames, spec, spec.video_max_pixels)
