"""Collapse diagnostics of an Anom-π policy: which actions it takes and what its reviews cost.

The review raised the question whether iDPO under AEI collapses onto one operator or onto
constant querying. :func:`action_usage` answers it from rollout summaries
(:meth:`methods.anom_pi.rollout.Trajectory.summary`, the ``review`` field of prediction
records), so training (per round) and every evaluation (``method_summary``) report the same
figures:

* ``actions`` / ``action_counts``: share and count of each action kind over all action turns
  (``answer``, ``think``, ``backtrack``, ``expand``, ``zoom``, ``invalid``);
* ``operators``: the shares among the three temporal operators only, and their entropy in bits
  (``log2(3)`` = uniform, 0 = one operator);
* per video: mean turns, mean frames decoded, mean operators, the share of reviews that used
  no operator, that answered at the first glance (one turn) and that the budget forced to
  answer;
* ``interaction_cost``: the mean AEI cost term (a review's own ``cost`` when it has one, else
  the turn and frame prices of the weights given);
* ``collapse``: plain-language flags (one operator takes 90 % or more of operator turns; no
  operator at all; 90 % or more of reviews forced by the budget).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from methods.anom_pi.aei import AEIWeights
from methods.anom_pi.env import OPERATORS


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else 0.0


ACTION_KINDS = ("answer", "think", "backtrack", "expand", "zoom", "invalid")


def step_kind(step: dict[str, Any]) -> str | None:
    """The action kind of a summary step (None for a reasoning message)."""
    if step.get("kind") != "action":
        return None
    name = str(step.get("action") or "invalid")
    return name.split(":", 1)[0]


def action_usage(reviews: Sequence[dict[str, Any]], weights: AEIWeights | None = None
                 ) -> dict[str, Any]:
    """Usage statistics of ``reviews`` (rollout summaries; module docstring)."""
    w = weights or AEIWeights()
    counts: Counter[str] = Counter()
    ops_per_video: list[int] = []
    for r in reviews:
        kinds = [k for k in (step_kind(s) for s in r.get("steps", [])) if k is not None]
        counts.update(kinds)
        ops_per_video.append(sum(k in OPERATORS for k in kinds))
    n = len(reviews)
    total = sum(counts.values())
    n_ops = sum(counts[k] for k in OPERATORS)
    op_shares = {k: (counts[k] / n_ops if n_ops else 0.0) for k in OPERATORS}
    entropy = -sum(p * math.log2(p) for p in op_shares.values() if p > 0)
    turns = [int(r.get("turns", 0)) for r in reviews]
    frames = [int(r.get("frames_decoded", 0)) for r in reviews]
    forced = sum(bool(r.get("forced")) for r in reviews)
    out: dict[str, Any] = {
        "videos": n,
        "actions": {k: round(counts[k] / total, 4) if total else 0.0 for k in ACTION_KINDS},
        "action_counts": {k: counts[k] for k in ACTION_KINDS},
        "operators": {**{k: round(v, 4) for k, v in op_shares.items()},
                      "entropy_bits": round(entropy, 4)},
        "mean_turns": round(_mean(turns), 4),
        "mean_frames_decoded": round(_mean(frames), 4),
        "mean_operators": round(_mean(ops_per_video), 4),
        "share_no_operator": round(sum(o == 0 for o in ops_per_video) / n, 4) if n else 0.0,
        "share_first_glance": round(sum(t == 1 for t in turns) / n, 4) if n else 0.0,
        "share_forced": round(forced / n, 4) if n else 0.0,
        "interaction_cost": round(_mean([float(r["cost"]) if "cost" in r else
                                        w.turn_cost * t + w.frame_cost * f
                                        for r, t, f in zip(reviews, turns, frames,
                                                           strict=True)]), 6),
    }
    flags = []
    if n_ops == 0 and n:
        flags.append("no temporal operator used in any review"
                     + (": every review answers at the first glance"
                        if all(t == 1 for t in turns) else ""))
    elif n_ops and max(op_shares.values()) >= 0.9:
        top = max(op_shares, key=lambda k: op_shares[k])
        flags.append(f"one operator ({top}) takes {op_shares[top]:.0%} of operator turns")
    if n and forced / n >= 0.9:
        flags.append(f"{forced / n:.0%} of reviews were forced to answer by the budget")
    out["collapse"] = flags
    return out
