"""Direct Preference Optimization: the one DPO objective of the project.

Rafailov et al. (2023): for a preferred response ``y_w`` and a dispreferred ``y_l`` of the same
prompt ``x``, with the policy ``pi`` and a frozen reference ``pi_ref``,

    h = (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))
    L = -log sigmoid(beta * h)

averaged over pairs. ``label_smoothing = e > 0`` is the conservative variant (cDPO), which
assumes each preference label is flipped with probability ``e``:
``L = -(1 - e) log sigmoid(beta h) - e log sigmoid(-beta h)``.

Trajectory-level DPO (Anom-π's iDPO) uses the same loss with ``log pi(y|x)`` the sum of the
log-probabilities of the tokens the policy itself emitted along the whole multi-turn
trajectory (``mask`` = 1 on those tokens, 0 on observations, prompts and padding):
:func:`sequence_logprob`.

Shapes: ``(P,)`` per pair; token log-probabilities ``(P, T)`` right-padded. Natural logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def sequence_logprob(token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of the masked token log-probabilities per row: ``(P, T), (P, T) -> (P,)``."""
    if token_logps.shape != mask.shape:
        raise ValueError(f"token_logps {tuple(token_logps.shape)} and mask "
                         f"{tuple(mask.shape)} differ")
    return (token_logps * mask.to(token_logps.dtype)).sum(dim=-1)


@dataclass
class DPOLoss:
    """The loss (scalar, differentiable) and per-pair diagnostics (detached ``(P,)``).

    ``chosen_rewards`` / ``rejected_rewards`` are DPO's implicit rewards
    ``beta * (log pi - log pi_ref)``; ``margins`` their difference; ``accuracy`` the share of
    pairs whose chosen reward is strictly higher.
    """

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    margins: torch.Tensor
    accuracy: float


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float = 0.1,
             label_smoothing: float = 0.0) -> DPOLoss:
    """DPO over ``P`` pairs of sequence log-probabilities (each ``(P,)``; see the module
    docstring). ``beta > 0``; ``0 <= label_smoothing < 0.5``. The reference terms carry no
    gradient."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"expected four (P,) tensors, got shapes {sorted(shapes)}")
    chosen = policy_chosen - ref_chosen.detach()
    rejected = policy_rejected - ref_rejected.detach()
    logits = beta * (chosen - rejected)
    losses = -(1.0 - label_smoothing) * F.logsigmoid(logits) \
        - label_smoothing * F.logsigmoid(-logits)
    cr, rr = (beta * chosen).detach(), (beta * rejected).detach()
    return DPOLoss(losses.mean(), cr, rr, cr - rr, float((cr > rr).float().mean()))
