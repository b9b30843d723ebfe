"""GRPO's pure functions against worked numbers: group advantages, equal groups, the three loss aggregations,
the clipped surrogate with separate clips (values and gradients), and the k3 KL."""

import math

import pytest
import torch
from torch.testing import assert_close

from prefopt import group_rl

T = lambda *v: torch.tensor(v, dtype=torch.float64)
ONE_GROUP = torch.zeros(4, dtype=torch.long)


def test_advantages_of_one_group_with_two_right_answers():
    """Rewards [1, 0, 0, 1]: mean 0.5; the sample std (n - 1) is √(((0.5²)·4) / 3) = √(1/3) = 0.5773502692.

    grpo:    ±0.5 / (0.5773502692 + 1e-4) = ±0.8658754572;
    dr_grpo: r - mean = [0.5, -0.5, -0.5, 0.5];
    rloo:    1 - (0 + 0 + 1)/3 = 2/3 and 0 - (1 + 0 + 1)/3 = -2/3.
    """
    rewards = T(1, 0, 0, 1)
    sign = T(1, -1, -1, 1)
    assert_close(group_rl.group_advantages(rewards, ONE_GROUP, "grpo"), 0.8658754572 * sign)
    assert_close(group_rl.group_advantages(rewards, ONE_GROUP, "dr_grpo"), 0.5 * sign)
    assert_close(group_rl.group_advantages(rewards, ONE_GROUP, "rloo"), 2 / 3 * sign)


def test_groups_are_separate_and_an_all_equal_group_gets_zero_advantage_under_every_kind():
    rewards, groups = T(5, 2, 2, 2, 4, 4, 4, 4), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    for kind in ("grpo", "dr_grpo", "rloo"):
        adv = group_rl.group_advantages(rewards, groups, kind)
        assert torch.equal(adv[4:], torch.zeros(4, dtype=torch.float64)), kind
        assert adv[0] > 0 and (adv[1:4] < 0).all() and abs(float(adv[:4].sum())) < 1e-9, kind
    assert group_rl.equal_groups(rewards, groups).tolist() == [False] * 4 + [True] * 4
    assert_close(group_rl.group_std(rewards, groups), T(math.sqrt(3 * 0.75 ** 2 + 2.25 ** 2) / 2, 0))


def test_rloo_is_dr_grpo_scaled_by_n_over_n_minus_1():
    g = torch.Generator().manual_seed(0)
    rewards, groups = torch.rand(24, generator=g, dtype=torch.float64), torch.arange(24) // 6
    assert_close(group_rl.group_advantages(rewards, groups, "rloo"),
                 6 / 5 * group_rl.group_advantages(rewards, groups, "dr_grpo"))


def test_the_three_aggregations_on_rows_of_lengths_1_and_3():
    """Per-token losses a = 1 | b, c, d = 2, 3, 7 (rows of lengths 1 and 3), the minibatch being these two rows:
    token_mean (1 + 2 + 3 + 7) / 4 = 3.25; seq_mean_token_sum 13 / 2 = 6.5; seq_mean_token_mean (1 + 12/3) / 2 = 2.5.
    """
    loss, lengths = T(1, 2, 3, 7), T(1, 3, 3, 3)
    assert float(group_rl.aggregate(loss, lengths, "token_mean", tokens=4, rows=2)) == 3.25
    assert float(group_rl.aggregate(loss, lengths, "seq_mean_token_sum", tokens=4, rows=2)) == 6.5
    assert float(group_rl.aggregate(loss, lengths, "seq_mean_token_mean", tokens=4, rows=2)) == 2.5
    # micro-batches of one minibatch add up to it: the first row alone, then the second
    split = sum(float(group_rl.aggregate(loss[s], lengths[s], "seq_mean_token_mean", 4, 2))
                for s in (slice(0, 1), slice(1, 4)))
    assert split == 2.5
    with pytest.raises(ValueError, match="token_mean"):
        group_rl.aggregate(loss, lengths, "mean", 4, 2)


def test_clipped_surrogate_values_clip_flags_and_gradients_with_clip_higher():
    """ε_low 0.2, ε_high 0.28, per token (log π_old = 0, so ρ = exp(log π)):
      A = +1, ρ = 1.3: clip(ρ) = 1.28, loss max(-1.3, -1.28) = -1.28, clipped high, ∂/∂log π = 0;
      A = +1, ρ = 1.2: loss -1.2, ∂/∂log π = -A·ρ = -1.2;
      A = -1, ρ = 0.7: clip(ρ) = 0.8, loss max(0.7, 0.8) = 0.8, clipped low, ∂ = 0;
      A = -1, ρ = 0.9: loss 0.9, ∂ = 0.9;
      A = -1, ρ = 1.5: loss max(1.5, 1.28) = 1.5 (a negative advantage is never clipped above), ∂ = 1.5;
      A = +1, ρ = 0.5: loss max(-0.5, -0.8) = -0.5 (never clipped below), ∂ = -0.5.
    """
    ratio = T(1.3, 1.2, 0.7, 0.9, 1.5, 0.5)
    logps = ratio.log().requires_grad_()
    adv = T(1, 1, -1, -1, -1, 1)
    loss, got_ratio, low, high = group_rl.clipped_surrogate(logps, torch.zeros(6, dtype=torch.float64), adv, 0.2, 0.28)
    assert_close(loss, T(-1.28, -1.2, 0.8, 0.9, 1.5, -0.5))
    assert_close(got_ratio.detach(), ratio)
    assert low.tolist() == [False, False, True, False, False, False]
    assert high.tolist() == [True, False, False, False, False, False]
    (grad,) = torch.autograd.grad(loss.sum(), logps)
    assert_close(grad, T(0.0, -1.2, 0.0, 0.9, 1.5, -0.5))


def test_k3_closed_form_and_its_minimum_at_the_reference():
    """log π = -1, log π_ref = -2: ρ = π_ref/π = e⁻¹, k3 = e⁻¹ - 1 - (-1) = e⁻¹ = 0.3678794412."""
    assert_close(group_rl.k3(T(-1.0), T(-2.0)), T(math.exp(-1)))
    logps = T(-0.3, -2.0).requires_grad_()
    value = group_rl.k3(logps, logps.detach())
    (grad,) = torch.autograd.grad(value.sum(), logps)
    assert_close(value.detach(), T(0.0, 0.0))
    assert_close(grad, T(0.0, 0.0))
