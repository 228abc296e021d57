"""Anom-π's environment, action menu and parser: each operator's effect on the window and on
the frames shown next, legality under the budget, and the one action extractor (hand-computed
values)."""

from __future__ import annotations

import numpy as np
import pytest

from methods.anom_pi.actions import action_table, legal_actions, menu, parse_action
from methods.anom_pi.env import (
    EnvConfig,
    ReviewState,
    Window,
    affordable,
    backtrack,
    expand,
    operator_window,
    start_state,
    view_indices,
    zoom,
)


def test_views_show_the_centres_of_equal_parts() -> None:
    # centres of 4 parts of [0, 100): 12.5, 37.5, 62.5, 87.5 -> floored
    assert view_indices(Window(0, 100), 4).tolist() == [12, 37, 62, 87]
    # [50, 100): 50 + 6.25, 18.75, 31.25, 43.75
    assert view_indices(Window(50, 100), 4).tolist() == [56, 68, 81, 93]
    # a window narrower than the view shows all of its frames
    assert view_indices(Window(10, 13), 4).tolist() == [10, 11, 12]


def test_zoom_takes_an_equal_part() -> None:
    assert zoom(Window(0, 100), 0, 2) == Window(0, 50)
    assert zoom(Window(0, 100), 1, 2) == Window(50, 100)
    assert zoom(Window(10, 20), 2, 3) == Window(16, 20)  # 10 + 2*10//3 = 16
    with pytest.raises(ValueError):
        zoom(Window(0, 100), 2, 2)


def test_fine_grained_sampling_interleaves_new_frames() -> None:
    whole = view_indices(Window(0, 100), 4)
    half = view_indices(zoom(Window(0, 100), 0, 2), 4)  # 6.25, 18.75, 31.25, 43.75
    assert half.tolist() == [6, 18, 31, 43]
    assert not set(half.tolist()) & set(whole.tolist())


def test_expand_doubles_around_the_centre_inside_the_video() -> None:
    assert expand(Window(50, 76), 100, 2.0) == Window(37, 89)   # centre 63, width 52
    assert expand(Window(0, 30), 100, 2.0) == Window(0, 60)     # clipped at the start
    assert expand(Window(80, 100), 100, 2.0) == Window(60, 100)  # shifted back from the end
    assert expand(Window(0, 70), 100, 2.0) == Window(0, 100)    # capped at the video


def test_backtrack_moves_back_by_half_a_width() -> None:
    assert backtrack(Window(50, 100), 0.5) == Window(25, 75)
    assert backtrack(Window(10, 60), 0.5) == Window(0, 50)   # clipped, width kept
    assert backtrack(Window(5, 6), 0.5) == Window(4, 5)      # at least one frame


def test_operators_apply_only_where_they_change_the_window() -> None:
    cfg = EnvConfig(frames_per_view=4, max_frames=24)
    state, idx = start_state("v", 100, cfg)
    state.show(state.window, idx)
    assert operator_window(state, "expand", None, cfg) is None     # already the whole video
    assert operator_window(state, "backtrack", None, cfg) is None  # already at frame 0
    assert operator_window(state, "zoom", 1, cfg) == Window(50, 100)
    narrow = ReviewState("v", 100, Window(0, 7))
    assert operator_window(narrow, "zoom", 0, cfg) is None  # a 3-frame half < 4 frames/view
    with pytest.raises(ValueError):
        operator_window(state, "rewind", None, cfg)


def test_frames_are_counted_once() -> None:
    cfg = EnvConfig(frames_per_view=4, max_frames=8)
    state, idx = start_state("v", 100, cfg)
    assert state.show(state.window, idx) == [12, 37, 62, 87]
    assert state.frames_decoded == 4
    # viewing the same window again decodes nothing new
    assert state.show(state.window, idx) == []
    w = zoom(state.window, 0, 2)
    assert affordable(state, w, cfg)
    assert state.show(w, view_indices(w, 4)) == [6, 18, 31, 43]
    assert state.frames_decoded == 8
    assert not affordable(state, zoom(w, 0, 2), cfg)  # 4 more would exceed 8


def _codes(state: ReviewState, cfg: EnvConfig) -> str:
    return "".join(a.code for a in legal_actions(state, cfg, action_table(cfg.zoom_segments)))


def test_legal_actions_follow_the_window_and_the_budget() -> None:
    cfg = EnvConfig(frames_per_view=4, max_frames=8, max_turns=6)
    state, idx = start_state("v", 100, cfg)
    state.show(state.window, idx)
    assert _codes(state, cfg) == "ABCFG"  # no backtrack at 0, no expansion of the whole video
    w = zoom(state.window, 1, 2)
    state.show(w, view_indices(w, 4))
    state.turns = 1
    # zooming again or backtracking would exceed 8 frames; expanding back to the whole video
    # re-shows frames 12, 37, 62, 87, already decoded, so it is free
    assert _codes(state, cfg) == "ABCE"
    state.turns = 3
    assert _codes(state, cfg) == "ABCE"  # think: its choice, the reasoning, an answer
    state.turns = 4
    assert _codes(state, cfg) == "ABE"  # two turns left: not enough to think
    state.turns = 5
    assert _codes(state, cfg) == "AB"   # the last turn must answer
    roomy = EnvConfig(frames_per_view=4, max_frames=40, max_turns=6)
    state.turns = 1
    assert _codes(state, roomy) == "ABCDEFG"
    assert "C" not in "".join(a.code for a in legal_actions(
        state, roomy, action_table(2), thinking=False))


def test_action_table_and_menu() -> None:
    table = action_table(3)
    assert [a.code for a in table] == list("ABCDEFGH")
    assert [a.name for a in table] == ["answer:1", "answer:0", "think", "backtrack", "expand",
                                       "zoom:0", "zoom:1", "zoom:2"]
    assert menu(table[:2]) == "A, B"
    with pytest.raises(ValueError):
        action_table(1)


@pytest.mark.parametrize(("text", "code"), [
    ("F", "F"), (" E", "E"), ("I choose D.", "D"), ("<action>G</action>", "G"),
    ("Answer: A", "A"), ("answer: abnormal", "A"), ("The video is normal.", "B"),
    ("Abnormal activity", "A"), ("let me think", "C"), ("expand the window", "E"),
    ("hmm", None), ("Z", None),
])
def test_parse_action(text: str, code: str | None) -> None:
    legal = list(action_table(2))
    got = parse_action(text, legal)
    assert (got.code if got else None) == code


def test_parse_action_ignores_illegal_letters() -> None:
    legal = [a for a in action_table(2) if a.code in "AB"]
    assert parse_action("F", legal) is None
    assert parse_action("F then B", legal).code == "B"  # type: ignore[union-attr]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        EnvConfig(frames_per_view=4, max_frames=2)
    with pytest.raises(ValueError):
        EnvConfig(max_turns=0)
    with pytest.raises(ValueError):
        start_state("v", 0, EnvConfig())
    assert np.array_equal(start_state("v", 10, EnvConfig(frames_per_view=4))[1],
                          np.array([1, 3, 6, 8]))  # 1.25, 3.75, 6.25, 8.75


def test_snippets_show_each_moment_as_consecutive_frames() -> None:
    # moments 12, 37, 62, 87, each with the next frame (one Qwen2-VL temporal patch)
    assert view_indices(Window(0, 100), 4, snippet=2, stride=1).tolist() == [
        12, 13, 37, 38, 62, 63, 87, 88]
    # moments 91, 93, 96, 98 of [90, 100), 3 frames apart, clipped at the last frame 99
    assert view_indices(Window(90, 100), 4, snippet=2, stride=3, num_frames=100).tolist() == [
        91, 94, 93, 96, 96, 99, 98, 99]
    cfg = EnvConfig(frames_per_view=4, snippet=2, snippet_stride=1, max_frames=16)
    state, idx = start_state("v", 100, cfg)
    assert idx.tolist() == [12, 13, 37, 38, 62, 63, 87, 88]
    state.show(state.window, idx)
    assert state.frames_decoded == 8
    with pytest.raises(ValueError):
        EnvConfig(frames_per_view=4, snippet=2, max_frames=6)  # the first view needs 8
