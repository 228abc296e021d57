"""The project's one DPO loss (``methods/rl/dpo.py``) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from methods.rl.dpo import dpo_loss, sequence_logprob


def test_sequence_logprob_sums_only_the_policy_tokens() -> None:
    logps = torch.tensor([[-0.5, -1.0, -2.0, -9.0], [-0.25, -9.0, -0.75, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 0]])  # row 2: an observation between turns
    assert sequence_logprob(logps, mask).tolist() == [-3.5, -1.0]
    with pytest.raises(ValueError, match="differ"):
        sequence_logprob(logps, mask[:, :3])


def test_dpo_loss_hand_computed() -> None:
    # pair 1: chosen gains 1.0 over the reference (-4 vs -5), rejected loses 0.5 (-6.5 vs -6):
    #   h = 1.0 - (-0.5) = 1.5; beta = 0.1 -> logit 0.15; loss = -log sigmoid(0.15)
    # pair 2: chosen loses 1.0 (-3 vs -2), rejected gains 1.0 (-7 vs -8): h = -2 -> logit -0.2
    pc = torch.tensor([-4.0, -3.0], requires_grad=True)
    pr = torch.tensor([-6.5, -7.0], requires_grad=True)
    rc, rr = torch.tensor([-5.0, -2.0]), torch.tensor([-6.0, -8.0])
    out = dpo_loss(pc, pr, rc, rr, beta=0.1)

    def nls(x: float) -> float:  # -log sigmoid(x)
        return math.log1p(math.exp(-x))

    expected = (nls(0.15) + nls(-0.2)) / 2  # 0.621... and 0.798... -> 0.7099...
    assert float(out.loss.detach()) == pytest.approx(expected, abs=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([0.1, -0.1])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.05, 0.1])
    assert out.margins.tolist() == pytest.approx([0.15, -0.2])
    assert out.accuracy == 0.5
    # gradient w.r.t. the chosen log-prob: -beta * sigmoid(-logit) / P (P = 2 pairs)
    out.loss.backward()
    sig = [1 / (1 + math.exp(0.15)), 1 / (1 + math.exp(-0.2))]
    assert pc.grad is not None and pr.grad is not None
    assert pc.grad.tolist() == pytest.approx([-0.1 * sig[0] / 2, -0.1 * sig[1] / 2])
    assert pr.grad.tolist() == pytest.approx([0.1 * sig[0] / 2, 0.1 * sig[1] / 2])


def test_conservative_dpo_and_equal_policies() -> None:
    # the policy equals the reference: h = 0, loss = log 2 whatever the smoothing
    z = torch.zeros(3)
    assert float(dpo_loss(z - 1, z - 2, z - 1, z - 2).loss) == pytest.approx(math.log(2))
    assert float(dpo_loss(z - 1, z - 2, z - 1, z - 2, label_smoothing=0.2).loss) == \
        pytest.approx(math.log(2))
    # h = 10, beta = 0.5 -> logit 5: 0.9 * -log sigmoid(5) + 0.1 * -log sigmoid(-5)
    out = dpo_loss(torch.tensor([0.0]), torch.tensor([-10.0]), torch.tensor([0.0]),
                   torch.tensor([0.0]), beta=0.5, label_smoothing=0.1)
    expected = 0.9 * math.log1p(math.exp(-5)) + 0.1 * math.log1p(math.exp(5))
    assert float(out.loss) == pytest.approx(expected, abs=1e-6)


def test_bad_arguments() -> None:
    t = torch.zeros(2)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(t, t, t, t, beta=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(t, t, t, t, label_smoothing=0.5)
    with pytest.raises(ValueError, match="shapes"):
        dpo_loss(t, torch.zeros(3), t, t)
