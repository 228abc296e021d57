"""The LAVAD/VERA window grid against hand-computed values from the protocol text."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.windows import WindowSpec, make_grid, sample_window, window_scores_to_frames


def test_ucf_grid_matches_vera_bounds() -> None:
    # VERA: centres 0, 16, ... < length; window max(c - 150, 0) .. min(c + 150, length)
    n = 1000
    g = make_grid(n, fps=30, spec=WindowSpec(frames_per_window=8, sampler="arange"))
    assert g.centres.tolist() == list(range(0, n, 16))
    for c, s, e in zip(g.centres, g.starts, g.ends, strict=True):
        assert s == max(c - 150, 0)
        assert e == min(c + 150, n)
    # VERA draws np.arange(s, e, (e - s) / 8) cast to int
    c = 480
    assert g.indices[c // 16].tolist() == [330, 367, 405, 442, 480, 517, 555, 592]


def test_xd_window_is_240_frames() -> None:
    g = make_grid(5000, fps=24)
    mid = len(g) // 2
    assert g.ends[mid] - g.starts[mid] == 240


def test_lavad_linspace_sampler() -> None:
    # LAVAD: linspace(0, t - 1, 10) cast to int, all frames when the window holds <= 10
    assert sample_window(100, 400, 10).tolist() == [100, 133, 166, 199, 232, 266, 299, 332,
                                                     365, 399]
    assert sample_window(5, 12, 10).tolist() == list(range(5, 12))


def test_repeat_and_truncate() -> None:
    out = window_scores_to_frames(np.array([0.1, 0.2, 0.3]), 35, 16)
    assert out.shape == (35,)
    assert (out[:16] == 0.1).all() and (out[16:32] == 0.2).all() and (out[32:] == 0.3).all()
    with pytest.raises(ValueError, match="expected 3 window scores"):
        window_scores_to_frames(np.zeros(2), 35, 16)


def test_all_indices_is_union() -> None:
    g = make_grid(300, fps=30)
    union = np.unique(np.concatenate(g.indices))
    assert np.array_equal(g.all_indices(), union)
    assert g.all_indices().max() < 300
