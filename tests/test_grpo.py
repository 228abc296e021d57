"""The shared GRPO objective against hand-computed values (methods/rl/grpo.py)."""

from __future__ import annotations

import math

import pytest
import torch

from methods.rl.grpo import (
    GRPOConfig,
    group_advantages,
    grpo_loss,
    k3_kl,
    make_optimizer,
    optimizer_step,
    think_answer_format_reward,
    token_logprobs,
)


def test_group_advantages_by_hand() -> None:
    # group 1: rewards 1, 0, 0, 1 -> mean 0.5, unbiased std sqrt(4 * 0.25 / 3)
    # group 2: all equal -> advantage 0 (std 0, eps keeps it finite)
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0]), 4)
    s = math.sqrt(1.0 / 3.0)
    want = [0.5 / (s + 1e-4), -0.5 / (s + 1e-4), -0.5 / (s + 1e-4), 0.5 / (s + 1e-4),
            0.0, 0.0, 0.0, 0.0]
    assert adv.tolist() == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.ones(6), 4)


def test_k3_kl_by_hand() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.0, -1.0, -2.0])
    want = [math.exp(r - p) - (r - p) - 1 for p, r in zip(logp.tolist(), ref.tolist(),
                                                          strict=True)]
    assert k3_kl(logp, ref).tolist() == pytest.approx(want)
    assert want[0] == 0.0 and min(want) >= 0.0


def _loss_by_hand(logp, old, ref, adv, mask, beta, eps, eps_hi):
    """Plain-Python GRPO loss: per-token clipped surrogate and k3 KL, mean over each
    sequence's tokens, then over sequences."""
    seqs = []
    for i in range(len(logp)):
        terms = []
        for t in range(len(logp[i])):
            if not mask[i][t]:
                continue
            rho = math.exp(logp[i][t] - old[i][t])
            surr = min(rho * adv[i], min(max(rho, 1 - eps), 1 + eps_hi) * adv[i])
            d = ref[i][t] - logp[i][t]
            terms.append(-surr + beta * (math.exp(d) - d - 1))
        seqs.append(sum(terms) / len(terms))
    return sum(seqs) / len(seqs)


def test_grpo_loss_matches_hand_computation_with_clipping_and_padding() -> None:
    logp = [[-0.5, -1.0, -2.0], [-0.2, -3.0, -1.0]]
    old = [[-0.9, -1.0, -1.5], [-0.2, -2.0, -1.0]]   # ratios e^0.4, 1, e^-0.5 | 1, e^-1
    ref = [[-0.6, -1.2, -2.0], [-0.4, -2.5, -9.0]]
    adv = [1.5, -0.7]
    mask = [[1, 1, 1], [1, 1, 0]]                    # the last token of seq 2 is padding
    for beta, eps, eps_hi in ((0.04, 0.2, 0.2), (0.1, 0.2, 0.28), (0.0, 0.3, 0.3)):
        out = grpo_loss(torch.tensor(logp), torch.tensor(old), torch.tensor(adv),
                        torch.tensor(mask), torch.tensor(ref), beta=beta, epsilon=eps,
                        epsilon_high=None if eps_hi == eps else eps_hi)
        want = _loss_by_hand(logp, old, ref, adv, mask, beta, eps, eps_hi)
        assert float(out.loss) == pytest.approx(want, rel=1e-6)
    # clipped tokens (the clip bound is the active branch): seq 1 token 1 (ratio e^0.4 > 1.2
    # with A > 0) and seq 2 token 2 (ratio e^-1 < 0.8 with A < 0); seq 1 token 3 has
    # ratio e^-0.5 < 0.8 but A > 0, so its unclipped term is the minimum -> 2 of 5 tokens
    out = grpo_loss(torch.tensor(logp), torch.tensor(old), torch.tensor(adv),
                    torch.tensor(mask), torch.tensor(ref))
    assert out.clip_fraction == pytest.approx(2 / 5)


def test_gradient_on_policy_is_minus_advantage_over_length() -> None:
    # on-policy (old = logp) and ref = logp: d loss / d logp[i, t] = -A_i / (len_i * N)
    logp = torch.tensor([[-0.5, -1.0, -2.0], [-0.2, -3.0, -1.0]], requires_grad=True)
    adv = torch.tensor([2.0, -1.0])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    out = grpo_loss(logp, logp.detach(), adv, mask, logp.detach(), beta=0.04)
    out.loss.backward()
    want = [[-2.0 / 6, -2.0 / 6, -2.0 / 6], [1.0 / 2, 0.0, 0.0]]
    assert logp.grad.tolist() == [pytest.approx(w) for w in want]
    assert out.kl == 0.0 and out.mean_ratio == pytest.approx(1.0)


def test_clipped_token_has_no_gradient_unless_it_hurts() -> None:
    # ratio 1.5 > 1.2: with A > 0 the clipped branch wins (constant) -> no gradient;
    # with A < 0 the unclipped branch is the minimum -> gradient -A * ratio
    old = torch.tensor([[0.0]])
    for a, want in ((1.0, 0.0), (-1.0, 1.5)):
        logp = torch.tensor([[math.log(1.5)]], requires_grad=True)
        grpo_loss(logp, old, torch.tensor([a]), torch.ones(1, 1), beta=0.0).loss.backward()
        assert float(logp.grad) == pytest.approx(want)


def test_beta_needs_reference_and_shapes_must_agree() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(x, x, torch.zeros(2), torch.ones(2, 3), None, beta=0.04)
    with pytest.raises(ValueError, match="shapes differ"):
        grpo_loss(x, torch.zeros(2, 4), torch.zeros(2), torch.ones(2, 3), beta=0.0)
    with pytest.raises(ValueError):
        GRPOConfig(num_generations=1)


def test_token_logprobs_by_hand() -> None:
    logits = torch.tensor([[[0.0, math.log(3.0)], [2.0, 2.0]]]).to(torch.bfloat16)
    got = token_logprobs(logits, torch.tensor([[1, 0]]))
    # softmax([0, ln 3]) = [1/4, 3/4]; softmax([2, 2]) = [1/2, 1/2] (bf16 rounds ln 3)
    assert got.dtype == torch.float32
    assert got.tolist()[0] == pytest.approx([math.log(0.75), math.log(0.5)], abs=5e-3)


def test_optimizer_linear_decay_and_clipping() -> None:
    p = torch.nn.Parameter(torch.zeros(4))
    cfg = GRPOConfig(learning_rate=0.1)
    opt, sched = make_optimizer([p], cfg, total_steps=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.full((4,), 3.0)  # norm 6 -> clipped to 1
        norm = optimizer_step(opt, sched, [p], cfg.max_grad_norm)
        assert norm == pytest.approx(6.0) and p.grad is None
    assert lrs == pytest.approx([0.1, 0.075, 0.05, 0.025])
    assert opt.param_groups[0]["lr"] == 0.0
    # AdamW's first step moves each coordinate by lr (bias-corrected m / sqrt(v) = 1)
    q = torch.nn.Parameter(torch.zeros(2))
    opt, sched = make_optimizer([q], cfg, total_steps=10)
    q.grad = torch.tensor([0.3, -0.4])  # norm 0.5: not clipped
    optimizer_step(opt, sched, [q], 1.0)
    assert q.tolist() == pytest.approx([-0.1, 0.1], rel=1e-4)


@pytest.mark.parametrize(("text", "want"), [
    ("<think>a\nb</think><answer>Yes</answer>", 1.0),
    ("<think>a</think>\n\n<answer>No</answer>", 1.0),
    ("<answer>Yes</answer>", 0.0),
    ("<think>a</think><answer>Yes", 0.0),
    ("Sure. <think>a</think><answer>Yes</answer>", 0.0),
    ("<think>a</think><answer>Yes</answer> extra", 0.0),
])
def test_think_answer_format_reward(text: str, want: float) -> None:
    assert think_answer_format_reward(text) == want


@pytest.mark.parametrize("text,label,tagged,want", [
    ("Yes", True, False, 1.0), ("No", True, False, 0.0), (" no.", False, False, 1.0),
    ("", False, False, 0.0), ("maybe", True, False, 0.0),
    ("<think>a fight, no doubt</think><answer>Yes</answer>", True, True, 1.0),
    ("<think>yes</think><answer>No</answer>", True, True, 0.0),  # the answer tag decides
    ("<think>x</think> Yes", True, True, 0.0),  # no answer tag
    ("<answer>abnormal</answer>", True, True, 1.0),
])
def test_yes_no_accuracy_reward(text: str, label: bool, tagged: bool, want: float) -> None:
    from methods.rl.grpo import yes_no_accuracy_reward

    assert yes_no_accuracy_reward(text, label, tagged=tagged) == want
