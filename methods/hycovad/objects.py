"""Object-centric and frame-level inputs of HyCoVAD's proposer (paper §3.1, §3.2.5).

For a target frame ``i`` with half length ``t`` and stride ``s``, the *sequence* is frames
``i - t*s, ..., i, ..., i + t*s`` (``2t + 1`` frames, indices clipped to ``0 .. N - 1``). Each
object detected in frame ``i`` gives one crop sequence: its box, made square
(:func:`square_boxes`), cut from every frame of the sequence (the same box in every frame) and
resized to ``size x size`` (:func:`crop_sequences`) -> ``(2t + 1, size, size, 3)`` float32 in
``[0, 1]``. The frame-level input is the whole frame resized to ``size x size`` for the same
frames (the aspect ratio is not kept).

SocialGRU tracks: the *history* of target ``i`` is frames ``i - (L-1)*s', ..., i`` (``L = 8``:
7 past + current; ``s'`` the track stride); each object of frame ``i`` is linked backwards
through them by greedy nearest-neighbour matching of box centres (:func:`build_tracks`).
Positions are box centres normalised by the frame size, ``(cx / W, cy / H)``.

Conventions: 0-based frame indices; boxes ``(M, 4)`` float pixel ``x0, y0, x1, y1`` with
exclusive ``x1, y1``; frames ``(K, H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


def sequence_offsets(t: int, stride: int) -> np.ndarray:
    """``(2t + 1,)`` int64 offsets ``-t*s .. t*s`` step ``s`` of a sequence around its middle."""
    return np.arange(-t, t + 1, dtype=np.int64) * stride


def sequence_indices(targets: np.ndarray, num_frames: int, t: int, stride: int) -> np.ndarray:
    """``(T, 2t + 1)`` int64 frame indices of the sequences of ``targets`` ``(T,)``, clipped to
    ``0 .. num_frames - 1`` (a sequence at the start of a video repeats frame 0)."""
    idx = np.asarray(targets, dtype=np.int64)[:, None] + sequence_offsets(t, stride)[None]
    return np.clip(idx, 0, max(num_frames - 1, 0))


def history_indices(targets: np.ndarray, steps: int, stride: int) -> np.ndarray:
    """``(T, steps)`` int64 frames ``i - (steps-1)*s' .. i`` (oldest first) of each target; entries
    before frame 0 are ``-1`` (no such frame: the track is incomplete)."""
    idx = np.asarray(targets, dtype=np.int64)[:, None] \
        - np.arange(steps - 1, -1, -1, dtype=np.int64)[None] * stride
    return np.where(idx >= 0, idx, -1)


def context_indices(targets: np.ndarray, num_frames: int, t: int, stride: int,
                    track_steps: int = 8, track_stride: int = 1) -> np.ndarray:
    """Every frame (sorted unique int64) needed to score ``targets``: their sequences
    (:func:`sequence_indices`) and track histories (:func:`history_indices`, ``track_steps = 0``
    for none). Background frames of the detector are not included."""
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        return np.zeros(0, dtype=np.int64)
    parts = [sequence_indices(targets, num_frames, t, stride).ravel()]
    if track_steps > 0:
        hist = history_indices(targets, track_steps, track_stride).ravel()
        parts.append(hist[hist >= 0])
    return np.unique(np.concatenate(parts))


def square_boxes(boxes: np.ndarray, width: int, height: int, min_side: float = 16.0,
                 margin: float = 4.0) -> np.ndarray:
    """Square crop boxes ``(M, 4)`` for ``boxes`` ``(M, 4)``: side ``max(min_side, max(w, h) +
    2 * margin)`` (capped at ``min(width, height)``), centred on the box, then shifted (not
    shrunk) to lie inside the ``width x height`` frame. Float xyxy, exclusive ends."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.minimum(np.maximum(min_side, np.maximum(w, h) + 2 * margin), min(width, height))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    x0 = np.clip(cx - side / 2, 0, width - side)
    y0 = np.clip(cy - side / 2, 0, height - side)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def _axis_samples(lo: np.ndarray, hi: np.ndarray, size: int, limit: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sample positions of ``size`` pixel centres over ``[lo, hi)`` per row:
    ``(i0, i1, frac)`` each ``(N, size)`` (indices clamped to ``0 .. limit - 1``)."""
    step = (hi - lo) / size
    pos = lo[:, None] + (np.arange(size)[None] + 0.5) * step[:, None] - 0.5
    pos = np.clip(pos, 0, limit - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, limit - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def sample_boxes(frames: np.ndarray, frame_pos: np.ndarray, boxes: np.ndarray,
                 size: int) -> np.ndarray:
    """Bilinear resize of box regions: ``frames`` ``(K, H, W, C)`` uint8, ``frame_pos`` ``(N,)``
    positions into ``frames``, ``boxes`` ``(N, 4)`` xyxy -> ``(N, size, size, C)`` float32 in
    ``[0, 1]`` (output pixel ``j`` samples source ``x0 + (j + 0.5) * (x1 - x0) / size - 0.5``;
    coordinates outside the frame are clamped to its border)."""
    frame_pos = np.asarray(frame_pos, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n, (_, height, width, _) = len(frame_pos), frames.shape
    if n == 0:
        return np.zeros((0, size, size, frames.shape[3]), dtype=np.float32)
    y0, y1, fy = _axis_samples(boxes[:, 1], boxes[:, 3], size, height)
    x0, x1, fx = _axis_samples(boxes[:, 0], boxes[:, 2], size, width)
    k = frame_pos[:, None, None]

    def gather(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return frames[k, ys[:, :, None], xs[:, None, :]].astype(np.float32)

    fy3, fx3 = fy[:, :, None, None], fx[:, None, :, None]
    top = gather(y0, x0) * (1 - fx3) + gather(y0, x1) * fx3
    bottom = gather(y1, x0) * (1 - fx3) + gather(y1, x1) * fx3
    out = top * (1 - fy3) + bottom * fy3
    return np.asarray(out / 255.0, dtype=np.float32)


def crop_sequences(frames: np.ndarray, seq_pos: np.ndarray, boxes: np.ndarray,
                   size: int) -> np.ndarray:
    """Crop sequences: ``seq_pos`` ``(M, L)`` positions into ``frames`` ``(K, H, W, C)``,
    ``boxes`` ``(M, 4)`` (one box per sequence, used in all ``L`` frames) -> ``(M, L, size, size,
    C)`` float32 in ``[0, 1]``."""
    seq_pos = np.asarray(seq_pos, dtype=np.int64)
    m, length = seq_pos.shape
    rep = np.repeat(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), length, axis=0)
    flat = sample_boxes(frames, seq_pos.reshape(-1), rep, size)
    return flat.reshape(m, length, size, size, frames.shape[3])


def box_centres(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(M, 2)`` normalised centres ``((x0 + x1) / 2 / W, (y0 + y1) / 2 / H)`` of ``boxes``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 / width,
                     (boxes[:, 1] + boxes[:, 3]) / 2 / height], axis=1)


def greedy_match(a: np.ndarray, b: np.ndarray, max_dist: float) -> np.ndarray:
    """Greedy nearest-neighbour matching of points ``a`` ``(M, 2)`` to ``b`` ``(P, 2)``: pairs are
    taken in increasing distance, each point used once, distances above ``max_dist`` never.
    Returns ``(M,)`` int64: the matched row of ``b``, or ``-1``."""
    out = np.full(len(a), -1, dtype=np.int64)
    if len(a) == 0 or len(b) == 0:
        return out
    dist = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    used_b = np.zeros(len(b), dtype=bool)
    for flat in np.argsort(dist, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(b))
        if dist[i, j] > max_dist:
            break
        if out[i] < 0 and not used_b[j]:
            out[i], used_b[j] = j, True
    return out


def build_tracks(centres: list[np.ndarray | None], max_dist: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Tracks of the objects of the last frame through the history frames.

    Args:
        centres: per history frame, oldest first, ``(M_j, 2)`` normalised centres; ``None`` for a
            frame before the video start. The last entry is the target frame.
        max_dist: largest centre displacement between consecutive history frames (normalised).

    Returns:
        ``positions`` ``(M, L, 2)`` float64 (``M`` objects of the last frame, ``L`` history
        frames, oldest first; unfilled entries repeat the oldest linked position) and ``valid``
        ``(M,)`` bool: linked through every history frame.
    """
    last = centres[-1]
    m, length = (0 if last is None else len(last)), len(centres)
    positions = np.zeros((m, length, 2))
    valid = np.ones(m, dtype=bool)
    if m == 0 or last is None:
        return positions, valid[:0]
    positions[:, -1] = last
    current = np.arange(m)  # row of each object in the newer frame, -1 once lost
    for j in range(length - 2, -1, -1):
        prev = centres[j]
        alive = current >= 0
        match = np.full(m, -1, dtype=np.int64)
        if prev is not None and alive.any():
            match[alive] = greedy_match(positions[alive, j + 1], prev, max_dist)
        lost = match < 0
        valid &= ~lost
        if prev is not None:
            positions[~lost, j] = prev[match[~lost]]
        positions[lost, j] = positions[lost, j + 1]
        current = np.where(lost, -1, match)
    return positions, valid


def neighbour_tracks(positions: np.ndarray, valid: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other objects (by current position) with valid tracks, per object:
    ``positions`` ``(M, L, 2)``, ``valid`` ``(M,)`` -> ``(M, k, L, 2)`` tracks (zeros where
    absent) and ``(M, k)`` bool mask."""
    m, length = positions.shape[:2]
    out = np.zeros((m, k, length, 2))
    mask = np.zeros((m, k), dtype=bool)
    if m == 0 or k == 0:
        return out, mask
    dist = np.linalg.norm(positions[:, None, -1] - positions[None, :, -1], axis=-1)
    dist[:, ~valid] = np.inf
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    for slot in range(order.shape[1]):
        j = order[:, slot]
        ok = np.isfinite(dist[np.arange(m), j])
        out[ok, slot] = positions[j[ok]]
        mask[ok, slot] = True
    return out, mask


@dataclass
class Items:
    """Scoring/training items, one row per (target frame, object), plus one row per target frame
    for frame-level input. ``L`` = track steps (7 past + current), ``K`` = neighbours.

    Attributes:
        target: ``(M,)`` int64 row of the target in the ``targets`` passed to
            :func:`collect_items`.
        frame: ``(M,)`` int64 target frame index.
        box: ``(M, 4)`` float64 crop box (square object box, or the whole frame).
        is_frame: ``(M,)`` bool, frame-level row.
        past: ``(M, L - 1, 2)`` normalised past positions (oldest first); current ``(M, 2)``.
        valid: ``(M,)`` bool, complete track (False for frame rows).
        neighbours: ``(M, K, L - 1, 2)`` neighbours' past positions; ``mask`` ``(M, K)`` bool.
    """

    target: np.ndarray
    frame: np.ndarray
    box: np.ndarray
    is_frame: np.ndarray
    past: np.ndarray
    current: np.ndarray
    valid: np.ndarray
    neighbours: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def select(self, rows: np.ndarray) -> Items:
        """The items at ``rows``."""
        return Items(*(getattr(self, f.name)[rows] for f in fields(self)))


@dataclass(frozen=True)
class ItemSpec:
    """How :func:`collect_items` turns detections into items (see :class:`Items`)."""

    objects: bool = True  # object rows
    frames: bool = False  # frame-level rows
    min_side: float = 16.0
    margin: float = 4.0
    max_objects: int = 16  # largest boxes kept per target frame
    track_steps: int = 8
    track_stride: int = 3
    track_max_dist: float = 0.08  # normalised centre displacement per track step
    neighbours: int = 4


def collect_items(targets: np.ndarray, detections: dict[int, np.ndarray], width: int,
                  height: int, spec: ItemSpec) -> Items:
    """Items of ``targets`` ``(T,)`` from ``detections`` (frame index -> ``(M, 4)`` boxes, for
    every target and, when ``spec.track_steps > 1``, every history frame ``>= 0``), in target
    order, the objects (at most ``spec.max_objects``, the largest, in detection order) before
    the frame row of each target. A neighbour needs a complete track; an object without one
    keeps its (partial) positions with ``valid = False``."""
    length, k = max(spec.track_steps, 2), spec.neighbours
    targets = np.asarray(targets, dtype=np.int64)
    hist = history_indices(targets, length, spec.track_stride)
    cols: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(Items)}

    def add(r: int, i: int, box: np.ndarray, is_frame: bool, pos: np.ndarray, valid: np.ndarray,
            neigh: np.ndarray, mask: np.ndarray) -> None:
        n = len(box)
        for name, value in (("target", np.full(n, r)), ("frame", np.full(n, i)), ("box", box),
                            ("is_frame", np.full(n, is_frame)), ("past", pos[:, :-1]),
                            ("current", pos[:, -1]), ("valid", valid), ("neighbours", neigh),
                            ("mask", mask)):
            cols[name].append(value)

    for r, i in enumerate(targets):
        if spec.objects:
            boxes = np.asarray(detections[int(i)], dtype=np.float64).reshape(-1, 4)
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            boxes = boxes[np.sort(np.argsort(-area, kind="stable")[: spec.max_objects])]
            cents: list[np.ndarray | None] = [
                None if j < 0 or spec.track_steps < 2 else
                box_centres(detections[int(j)], width, height) for j in hist[r, :-1]]
            cents.append(box_centres(boxes, width, height))
            pos, valid = build_tracks(cents, spec.track_max_dist)
            neigh, mask = neighbour_tracks(pos, valid, k)
            add(r, int(i), square_boxes(boxes, width, height, spec.min_side, spec.margin),
                False, pos, valid, neigh[:, :, :-1], mask)
        if spec.frames:
            add(r, int(i), np.array([[0.0, 0.0, width, height]]), True, np.zeros((1, length, 2)),
                np.zeros(1, dtype=bool), np.zeros((1, k, length - 1, 2)), np.zeros((1, k), bool))
    shapes = {"target": (0,), "frame": (0,), "box": (0, 4), "is_frame": (0,),
              "past": (0, length - 1, 2), "current": (0, 2), "valid": (0,),
              "neighbours": (0, k, length - 1, 2), "mask": (0, k)}
    dtypes = {"target": np.int64, "frame": np.int64, "is_frame": bool, "valid": bool,
              "mask": bool}
    return Items(**{name: (np.concatenate(v) if v else np.zeros(shapes[name])).astype(
        dtypes.get(name, np.float64)) for name, v in cols.items()})


def item_sequences(frames: np.ndarray, indices: np.ndarray, items: Items, offsets: np.ndarray,
                   num_frames: int, size: int) -> np.ndarray:
    """Crop sequences of ``items``: frames ``items.frame + offsets`` (``offsets`` ``(L,)`` or
    ``(M, L)``, clipped to ``0 .. num_frames - 1``) of ``frames`` ``(K, H, W, 3)`` whose frame
    indices are ``indices`` ``(K,)`` sorted -> ``(M, L, size, size, 3)`` float32 in ``[0, 1]``.
    Raises ``KeyError`` for a frame not in ``indices``."""
    idx = np.clip(items.frame[:, None] + np.broadcast_to(offsets, (len(items), offsets.shape[-1])),
                  0, max(num_frames - 1, 0))
    pos = np.minimum(np.searchsorted(indices, idx), len(indices) - 1)
    if len(items) and not np.array_equal(indices[pos], idx):
        missing = sorted(set(idx.ravel().tolist()) - set(indices.tolist()))
        raise KeyError(f"frames {missing[:5]} were not decoded")
    return crop_sequences(frames, pos, items.box, size)
