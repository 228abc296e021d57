"""The AEI utility on hand-built trajectories, the ranking into DPO pairs, and the collapse
diagnostics (hand-computed values)."""

from __future__ import annotations

import math

import pytest

from methods.anom_pi.aei import AEIWeights, Step, aei_utility, informativeness_gains
from methods.anom_pi.diagnostics import action_usage
from methods.anom_pi.idpo import preference_pairs

W = AEIWeights(success=1.0, informativeness=0.5, turn_cost=0.02, frame_cost=0.004)
STEPS = [Step("zoom", 0.4), Step("expand", 0.6), Step("answer", 0.7)]


def test_correct_informative_review() -> None:
    # gains 0.6 - 0.4 and 0.7 - 0.6; cost 3 * 0.02 + 12 * 0.004
    parts = aei_utility(1, 1, STEPS, turns=3, frames_decoded=12, weights=W)
    assert parts.success == 1.0
    assert parts.gains == pytest.approx((0.2, 0.1))
    assert parts.informativeness == pytest.approx(0.3)
    assert parts.cost == pytest.approx(0.108)
    assert parts.utility == pytest.approx(1.0 + 0.15 - 0.108)


def test_wrong_answer_and_misleading_evidence_on_a_normal_video() -> None:
    # label 0: the confidence in the right answer is 1 - P(anomalous): 0.6 -> 0.4 -> 0.3
    parts = aei_utility(0, 1, STEPS, turns=3, frames_decoded=12, weights=W)
    assert parts.success == 0.0
    assert parts.gains == pytest.approx((-0.2, -0.1))
    assert parts.utility == pytest.approx(0.0 - 0.15 - 0.108)


def test_only_operators_earn_informativeness() -> None:
    steps = [Step("think", 0.2), Step("zoom", None), Step("backtrack", 0.5),
             Step("answer", 0.9)]
    # think is not evidence acquisition; zoom's confidence is unknown: 0; backtrack: 0.9 - 0.5
    assert informativeness_gains(1, steps) == pytest.approx([0.0, 0.4])
    # an operator as the last step (budget ran out on an unreadable turn) gains nothing
    assert informativeness_gains(1, [Step("zoom", 0.3)]) == [0.0]


def test_no_answer_and_first_glance() -> None:
    none = aei_utility(1, None, [Step("invalid", None)], turns=1, frames_decoded=4, weights=W)
    assert none.success == 0.0 and none.utility == pytest.approx(-(0.02 + 0.016))
    glance = aei_utility(0, 0, [Step("answer", 0.3)], turns=1, frames_decoded=4, weights=W)
    assert glance.utility == pytest.approx(1.0 - 0.036)
    assert glance.gains == ()


def test_cheaper_correct_review_ranks_higher() -> None:
    short = aei_utility(1, 1, [Step("answer", 0.7)], 1, 4, W).utility
    long = aei_utility(1, 1, [Step("zoom", 0.7), Step("answer", 0.7)], 2, 8, W).utility
    informative = aei_utility(1, 1, [Step("zoom", 0.3), Step("answer", 0.9)], 2, 8, W).utility
    assert informative > short > long  # 0.3 * 0.5 = 0.15 pays for 0.02 + 4 * 0.004


def test_weights_are_checked() -> None:
    with pytest.raises(ValueError):
        AEIWeights(turn_cost=-1)
    with pytest.raises(ValueError):
        aei_utility(2, 1, STEPS, 3, 12)


def test_preference_pairs() -> None:
    u = [0.5, 1.0, 0.2, 0.2,   # best 1, worst 3 (ties keep rollout order: 2 before 3)
         0.5, 0.52, 0.5, 0.5]  # spread 0.02 < min_gap: no pair
    assert preference_pairs(u, 4, 0.05) == [(1, 3)]
    assert preference_pairs(u, 4, 0.05, pairs_per_video=2) == [(1, 3), (0, 2)]
    assert preference_pairs(u, 4, 0.01) == [(1, 3), (5, 7)]
    with pytest.raises(ValueError):
        preference_pairs(u, 3, 0.05)


def _review(kinds: list[str], turns: int, frames: int, forced: bool = False) -> dict:
    steps = [{"kind": "action", "action": k} for k in kinds]
    return {"steps": steps, "turns": turns, "frames_decoded": frames, "forced": forced}


def test_action_usage() -> None:
    reviews = [_review(["zoom:0", "zoom:1", "answer:1"], 3, 12),
               _review(["backtrack", "think", "answer:0"], 4, 8),
               {**_review(["answer:0"], 1, 4), "steps": [{"kind": "action", "action": "answer:0"},
                                                         {"kind": "think", "text": "x"}]},
               _review(["expand", "invalid"], 2, 8, forced=True)]
    u = action_usage(reviews, W)
    assert u["videos"] == 4
    assert u["action_counts"] == {"answer": 3, "think": 1, "backtrack": 1, "expand": 1,
                                  "zoom": 2, "invalid": 1}
    assert u["actions"]["answer"] == pytest.approx(3 / 9, abs=1e-4)
    assert u["operators"]["zoom"] == 0.5 and u["operators"]["backtrack"] == 0.25
    assert u["operators"]["entropy_bits"] == pytest.approx(1.5)  # -(.5 log .5 + 2 .25 log .25)
    assert u["mean_turns"] == 2.5 and u["mean_frames_decoded"] == 8.0
    assert u["mean_operators"] == 1.0 and u["share_no_operator"] == 0.25
    assert u["share_first_glance"] == 0.25
    assert u["share_forced"] == 0.25
    assert u["interaction_cost"] == pytest.approx(0.02 * 2.5 + 0.004 * 8)
    assert u["collapse"] == []


def test_collapse_flags() -> None:
    one_op = action_usage([_review(["zoom:0", "answer:1"], 2, 8)] * 3)
    assert one_op["operators"]["entropy_bits"] == 0.0
    assert any("zoom" in f for f in one_op["collapse"])
    glance = action_usage([_review(["answer:1"], 1, 4)] * 2)
    assert glance["collapse"] == ["no temporal operator used in any review: every review "
                                  "answers at the first glance"]
    thinking = action_usage([_review(["think", "answer:1"], 3, 4)] * 2)
    assert thinking["collapse"] == ["no temporal operator used in any review"]
    forced = action_usage([_review(["think", "expand", "answer:1"], 6, 20, forced=True)] * 10)
    assert any("forced" in f for f in forced["collapse"])
    assert math.isclose(action_usage([{**_review(["answer:1"], 1, 4), "cost": 0.5}])
                        ["interaction_cost"], 0.5)
