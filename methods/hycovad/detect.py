"""Object detection for HyCoVAD's object-level inputs (paper §3.1).

The paper runs YOLOv12n on every frame. vad-eval ships no detector weights, so the default is a
classical detector for static cameras, :class:`MotionBlobDetector` (background subtraction), and
:class:`UltralyticsDetector` adapts a user-supplied model (``ultralytics`` package + a local
weights file). :func:`make_detector` builds either from a spec string.

Conventions
-----------
* Frames are ``(K, H, W, 3)`` uint8 RGB.
* Boxes are ``(M, 4)`` float64 pixel boxes ``x0, y0, x1, y1`` with exclusive ``x1, y1``
  (the box covers columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``).
* A background is whatever :meth:`Detector.fit_background` returns (``None`` for detectors that
  need none); callers pass it back unchanged to :meth:`Detector.detect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import ndimage


class Detector(Protocol):
    """What the proposer needs from an object detector. ``needs_background``: whether
    :meth:`fit_background` uses its frames (the caller then decodes them)."""

    needs_background: bool

    def fit_background(self, frames: np.ndarray) -> np.ndarray | None:
        """A background model from ``frames`` ``(K, H, W, 3)`` uint8 sampled across the video
        (:func:`background_indices`), or ``None`` when the detector needs none."""
        ...

    def detect(self, frames: np.ndarray, background: np.ndarray | None) -> list[np.ndarray]:
        """Boxes per frame: ``frames`` ``(K, H, W, 3)`` uint8 -> ``K`` arrays ``(M_k, 4)``
        float64 xyxy (exclusive ``x1, y1``)."""
        ...


def background_indices(num_frames: int, count: int) -> np.ndarray:
    """``count`` frame indices spread evenly over ``0 .. num_frames - 1`` (sorted unique, int64):
    the frames a background model is fitted on."""
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.linspace(0, num_frames - 1, max(1, count)).round().astype(np.int64)
    return np.unique(idx)


def median_backgrounds(frames: np.ndarray, early_fraction: float = 0.5) -> np.ndarray:
    """Two per-pixel median backgrounds of ``frames`` ``(K, H, W, 3)`` (in time order):
    ``[median over all K, median over the first ceil(early_fraction * K)]`` -> ``(2, H, W, 3)``
    uint8. The second keeps objects that arrive and stay for most of the video (an abandoned
    bag) out of the background."""
    if frames.ndim != 4 or len(frames) == 0:
        raise ValueError(f"frames must be (K, H, W, 3) with K >= 1, got {frames.shape}")
    k_early = max(1, int(np.ceil(early_fraction * len(frames))))
    full = np.median(frames, axis=0)
    early = np.median(frames[:k_early], axis=0)
    return np.stack([full, early]).round().astype(np.uint8)


def foreground_mask(frame: np.ndarray, backgrounds: np.ndarray, threshold: float) -> np.ndarray:
    """``(H, W)`` bool: pixels whose RGB Euclidean distance to at least one background exceeds
    ``threshold`` (0-255 units). ``backgrounds``: ``(H, W, 3)`` or ``(L, H, W, 3)``."""
    bgs = backgrounds[None] if backgrounds.ndim == 3 else backgrounds
    diff = frame[None].astype(np.float32) - bgs.astype(np.float32)
    dist2 = np.einsum("lhwc,lhwc->lhw", diff, diff)
    return np.asarray((dist2 > threshold * threshold).any(axis=0))


def mask_boxes(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Bounding boxes of the 8-connected components of ``mask`` ``(H, W)`` with at least
    ``min_area`` pixels -> ``(M, 4)`` float64 xyxy (exclusive ``x1, y1``), in label order."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros((0, 4))
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    boxes = []
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is not None and areas[k] >= min_area:
            boxes.append((sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


@dataclass
class MotionBlobDetector:
    """Background subtraction for static cameras.

    Background: per-pixel medians of frames sampled across the video (:func:`median_backgrounds`:
    the whole video and its first ``early_fraction``). Foreground: colour distance above
    ``threshold`` to at least one background, dilated ``dilation`` times with a 3x3 square,
    split into connected components; components of fewer than ``min_area`` pixels (after
    dilation) are dropped. Finds moving people and cars, people lying down for less than half the
    video, and objects left behind in its second half; an object that stands still for most of
    the first half and then leaves leaves a "ghost" box where it stood.
    """

    needs_background = True
    threshold: float = 30.0
    dilation: int = 1
    min_area: int = 20
    early_fraction: float = 0.5

    def fit_background(self, frames: np.ndarray) -> np.ndarray:
        """``(2, H, W, 3)`` uint8 backgrounds from ``frames`` ``(K, H, W, 3)`` in time order."""
        return median_backgrounds(frames, self.early_fraction)

    def detect(self, frames: np.ndarray, background: np.ndarray | None) -> list[np.ndarray]:
        """Boxes per frame (see :class:`Detector`); ``background`` is required."""
        if background is None:
            raise ValueError("MotionBlobDetector needs a background (fit_background)")
        out = []
        for frame in frames:
            mask = foreground_mask(frame, background, self.threshold)
            if self.dilation > 0:
                mask = ndimage.binary_dilation(mask, structure=np.ones((3, 3), dtype=bool),
                                               iterations=self.dilation)
            out.append(mask_boxes(mask, self.min_area))
        return out


class UltralyticsDetector:
    """A user-supplied detector through the ``ultralytics`` package (YOLOv8-v12 weights file,
    e.g. the paper's YOLOv12n). Imported lazily; ``classes`` restricts the class ids (None: all).
    Boxes are the model's ``xyxy`` in pixels (ultralytics boxes are continuous; treated as
    exclusive ends)."""

    needs_background = False

    def __init__(self, weights: str, conf: float = 0.25,
                 classes: tuple[int, ...] | None = None) -> None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"detector weights file not found: {weights!r}")
        try:
            from ultralytics import YOLO  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            raise ImportError("the 'ultralytics' detector needs the 'ultralytics' package "
                              "(pip install ultralytics)") from exc
        self.weights, self.conf = weights, conf
        self.classes = list(classes) if classes is not None else None
        self.model: Any = YOLO(weights)

    def fit_background(self, frames: np.ndarray) -> None:
        """No background model."""
        return None

    def detect(self, frames: np.ndarray, background: np.ndarray | None) -> list[np.ndarray]:
        """Boxes per frame (see :class:`Detector`); ``background`` is ignored."""
        if len(frames) == 0:
            return []
        bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]  # ultralytics takes BGR
        results = self.model.predict(bgr, conf=self.conf, classes=self.classes, verbose=False)
        return [np.asarray(r.boxes.xyxy.cpu().numpy(), dtype=np.float64).reshape(-1, 4)
                for r in results]


def make_detector(spec: str) -> Detector:
    """``"motion"`` -> :class:`MotionBlobDetector` with defaults; ``"ultralytics:PATH"`` ->
    :class:`UltralyticsDetector` on the weights file ``PATH``."""
    if spec == "motion":
        return MotionBlobDetector()
    if spec.startswith("ultralytics:"):
        return UltralyticsDetector(spec.split(":", 1)[1])
    raise ValueError(f"unknown detector {spec!r}: use 'motion' or 'ultralytics:/path/weights.pt'")
