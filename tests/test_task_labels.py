"""Frame labels: inclusive vs exclusive ends, clipping, hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.labels import intervals_to_labels


def test_inclusive_marks_both_ends() -> None:
    got = intervals_to_labels(10, [(2, 4)])
    np.testing.assert_array_equal(got, [0, 0, 1, 1, 1, 0, 0, 0, 0, 0])
    assert got.dtype == np.uint8


def test_exclusive_is_numpy_slice() -> None:
    got = intervals_to_labels(10, [(2, 4)], end_inclusive=False)
    np.testing.assert_array_equal(got, [0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    gt = np.zeros(10, np.uint8)
    gt[2:4] = 1  # VERA / VadCLIP
    np.testing.assert_array_equal(got, gt)


def test_several_intervals_and_single_frame() -> None:
    got = intervals_to_labels(8, [(0, 0), (5, 6)])
    np.testing.assert_array_equal(got, [1, 0, 0, 0, 0, 1, 1, 0])
    assert intervals_to_labels(8, [(3, 3)], end_inclusive=False).sum() == 0


def test_ends_beyond_the_video_are_clipped() -> None:
    # UCF-Crime: e.g. Arson011_x264 has 1266 frames and an interval ending at 1267
    got = intervals_to_labels(1266, [(150, 420), (680, 1267)])
    assert got.sum() == (420 - 150 + 1) + (1265 - 680 + 1)
    assert got[-1] == 1
    assert intervals_to_labels(5, [(7, 9)]).sum() == 0
    np.testing.assert_array_equal(intervals_to_labels(5, [(3, 5)], False), [0, 0, 0, 1, 1])


def test_no_intervals_and_empty_video() -> None:
    assert intervals_to_labels(4, []).sum() == 0
    assert intervals_to_labels(0, [(0, 3)]).shape == (0,)


@pytest.mark.parametrize("bad", [(-1, 3), (5, 2)])
def test_invalid_intervals(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="invalid interval"):
        intervals_to_labels(10, [bad])
