"""The Active Evidence Inquiry (AEI) utility of one rollout, from its video-level label only.

    U = w_s * S + w_i * I - (c_turn * turns + c_frame * frames_decoded)

* **Task success** ``S``: 1 when the final judgement equals the video's label, else 0 (no
  judgement: 0).
* **Evidence informativeness** ``I``: the summed gain, over the evidence-acquiring actions
  (the temporal operators), in the policy's confidence in the *correct* answer: for an operator
  at action turn ``t``, ``g_t = q_{t'} - q_t`` where ``q`` is the turn's confidence
  ``P(anomalous)`` (label 1) or ``1 - P(anomalous)`` (label 0) and ``t'`` the next action
  turn (the one that reads the new view). No frame labels are needed. Turns whose confidence
  is unknown (engines without log-probabilities) contribute nothing.
* **Interaction cost**: a price per turn (every assistant message) and per frame decoded (each
  distinct frame once, the first view included).

The weights are settings (:class:`AEIWeights`); the defaults are ours (README): success
dominates, an operator must raise the confidence in the right answer by more than its own cost
(one turn plus its new frames) to pay off: with the default 16-frame views, (0.02 + 16 x
0.002) / 0.5 = 0.104.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from methods.anom_pi.env import OPERATORS


@dataclass(frozen=True)
class AEIWeights:
    """``U = success * S + informativeness * I - turn_cost * turns - frame_cost * frames``."""

    success: float = 1.0
    informativeness: float = 0.5
    turn_cost: float = 0.02
    frame_cost: float = 0.002

    def __post_init__(self) -> None:
        if min(self.success, self.informativeness, self.turn_cost, self.frame_cost) < 0:
            raise ValueError("AEI weights must be >= 0")


@dataclass(frozen=True)
class Step:
    """One action turn of a rollout: the action's kind (``"answer"``, ``"think"``, an operator,
    or ``"invalid"``) and the confidence ``P(anomalous)`` read before it (None: unknown)."""

    kind: str
    confidence: float | None


@dataclass(frozen=True)
class AEIParts:
    """The utility and its terms (module docstring); ``gains`` per operator step, in order."""

    utility: float
    success: float
    informativeness: float
    cost: float
    gains: tuple[float, ...]


def informativeness_gains(label: int, steps: Sequence[Step]) -> list[float]:
    """``g_t`` of every operator step (0 where a confidence is unknown)."""
    def q(c: float | None) -> float | None:
        return None if c is None else (c if label == 1 else 1.0 - c)

    gains = []
    for i, s in enumerate(steps):
        if s.kind not in OPERATORS:
            continue
        before = q(s.confidence)
        after = q(steps[i + 1].confidence) if i + 1 < len(steps) else None
        gains.append(after - before if before is not None and after is not None else 0.0)
    return gains


def aei_utility(label: int, answer: int | None, steps: Sequence[Step], turns: int,
                frames_decoded: int, weights: AEIWeights | None = None) -> AEIParts:
    """The AEI utility of a rollout (module docstring). ``label``/``answer``: 1 anomalous,
    0 normal (``answer`` None: no judgement); ``turns``: assistant messages;
    ``frames_decoded``: distinct frames viewed."""
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    w = weights or AEIWeights()
    success = 1.0 if answer is not None and int(answer) == label else 0.0
    gains = informativeness_gains(label, steps)
    info = float(sum(gains))
    cost = w.turn_cost * turns + w.frame_cost * frames_decoded
    return AEIParts(w.success * success + w.informativeness * info - cost, success, info, cost,
                    tuple(gains))
