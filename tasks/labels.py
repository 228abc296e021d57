"""Frame labels from annotated intervals: the one label builder of the project.

Frames are 0-based. An interval ``(s, e)`` marks frames ``s..e`` when ends are inclusive
(LAVAD, VADTree, RTFM: ``s <= f <= e``) and frames ``s..e-1`` when they are exclusive (VERA,
VadCLIP: ``gt[s:e] = 1``). Interval ends beyond the video are clipped to its last frame (7 of
the 156 official UCF-Crime test intervals end at or after the last frame), and an interval
that starts beyond the video marks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def intervals_to_labels(
    num_frames: int, intervals: Iterable[tuple[int, int]], end_inclusive: bool = True
) -> np.ndarray:
    """``(num_frames,)`` uint8 frame labels, 1 inside any interval.

    Args:
        num_frames: video length in frames (>= 0).
        intervals: ``(start, end)`` pairs, 0-based frame indices as annotated.
        end_inclusive: whether ``end`` itself is anomalous (default, LAVAD/VADTree) or not
            (VERA/VadCLIP's ``gt[s:e] = 1``).

    Raises:
        ValueError: a negative ``num_frames``, a negative start, or ``end < start``.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    labels = np.zeros(num_frames, dtype=np.uint8)
    for start, end in intervals:
        s, e = int(start), int(end)
        if s < 0 or e < s:
            raise ValueError(f"invalid interval ({s}, {e})")
        stop = min(e + 1 if end_inclusive else e, num_frames)
        if s < stop:
            labels[s:stop] = 1
    return labels
