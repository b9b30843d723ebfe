"""PPO's pure functions against closed forms (the numbers are worked out in prefopt/rl.py's docstrings)."""

import math

import pytest
import torch
from torch.testing import assert_close

from prefopt import rl


def test_gae_closed_forms_and_masked_garbage():
    ones = torch.ones(1, 3)
    adv, ret = rl.gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.zeros(1, 3), ones, gamma=1.0, lam=0.95)
    assert_close(adv, torch.tensor([[0.9025, 0.95, 1.0]]))
    assert_close(ret, adv)
    adv, ret = rl.gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.full((1, 3), 0.5), ones, gamma=0.9, lam=0.8)
    assert_close(adv, torch.tensor([[0.1732, 0.31, 0.5]]))
    assert_close(ret, torch.tensor([[0.6732, 0.81, 1.0]]))
    # two padded positions holding garbage rewards and values change nothing
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]])
    adv2, ret2 = rl.gae(torch.tensor([[0.0, 0.0, 1.0, 7.0, -3.0]]), torch.tensor([[0.5, 0.5, 0.5, 9.0, 4.0]]), mask,
                        gamma=0.9, lam=0.8)
    assert_close(adv2[:, :3], adv)
    assert_close(ret2[:, :3], ret)
    assert adv2[0, 3:].abs().sum() == 0 and ret2[0, 3:].abs().sum() == 0


def test_gae_matches_a_direct_sum_of_discounted_deltas():
    torch.manual_seed(0)
    r, v = torch.randn(2, 6), torch.randn(2, 6)
    adv, _ = rl.gae(r, v, torch.ones(2, 6), gamma=0.97, lam=0.9)
    v_next = torch.cat([v[:, 1:], torch.zeros(2, 1)], 1)
    delta = r + 0.97 * v_next - v
    want = torch.stack([sum((0.97 * 0.9) ** (k - t) * delta[:, k] for k in range(t, 6)) for t in range(6)], 1)
    assert_close(adv, want)


def test_masked_whitening():
    got = rl.masked_whiten(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    assert_close(got, torch.tensor([[0.0, -1.0, 1.0, 0.0]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("adv, ratio, loss, grad", [
    (1.0, 0.5, -0.5, -1.0), (1.0, 1.1, -1.1, -1.0), (1.0, 1.5, -1.2, 0.0),
    (-1.0, 0.5, 0.8, 0.0), (-1.0, 1.1, 1.1, 1.0), (-1.0, 1.5, 1.5, 1.0),
])
def test_clipped_policy_loss_and_its_gradient(adv, ratio, loss, grad):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    got, stats = rl.policy_loss(logp, torch.zeros(1, 1), torch.tensor([[adv]]), torch.ones(1, 1), clip=0.2)
    got.backward()
    assert_close(got.item(), loss, atol=1e-6, rtol=0)
    assert_close(logp.grad.item() / ratio, grad, atol=1e-6, rtol=0)  # d loss / d ρ = (d loss / d log ρ) / ρ
    assert stats["clipfrac"].item() == (1.0 if grad == 0.0 else 0.0)
    assert_close(stats["ratio"].item(), ratio, atol=1e-6, rtol=0)
    assert_close(stats["approxkl"].item(), ratio - 1 - math.log(ratio), atol=1e-6, rtol=0)


def test_policy_loss_at_ratio_one_is_minus_the_mean_advantage():
    adv, mask = torch.tensor([[1.0, -2.0, 5.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    loss, stats = rl.policy_loss(torch.zeros(1, 3), torch.zeros(1, 3), adv, mask, clip=0.2)
    assert_close(loss.item(), 0.5)
    assert stats["clipfrac"] == 0 and stats["approxkl"] == 0 and stats["ratio"] == 1 and stats["ratio_var"] == 0


def test_clipped_value_loss():
    v = torch.tensor([[0.5]], requires_grad=True)
    loss, clipfrac = rl.value_loss(v, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), clip=0.2)
    loss.backward()
    assert_close(loss.item(), 0.32)
    assert v.grad.item() == 0.0 and clipfrac.item() == 1.0
    v = torch.tensor([[0.1]], requires_grad=True)  # inside the clip range: plain 0.5·(v - R)²
    loss, clipfrac = rl.value_loss(v, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), clip=0.2)
    loss.backward()
    assert_close(loss.item(), 0.405)
    assert_close(v.grad.item(), -0.9)


def test_kl_estimators():
    assert_close(rl.kl_penalty(torch.tensor(-1.0), torch.tensor(-2.0), "k1").item(), 1.0)
    assert_close(rl.kl_penalty(torch.tensor(-1.0), torch.tensor(-2.0), "k3").item(), math.exp(-1))
    assert rl.kl_penalty(torch.tensor(-1.5), torch.tensor(-1.5), "k3").item() == 0.0
    with pytest.raises(ValueError):
        rl.kl_penalty(torch.tensor(0.0), torch.tensor(0.0), "k2")


def test_adaptive_kl_controller():
    ctl = rl.AdaptiveKL(0.2, target=6.0, horizon=10_000)
    assert_close(ctl.update(kl=12.0, n_samples=512), 0.202048)
    fixed = rl.AdaptiveKL(0.2)
    assert fixed.update(kl=100.0, n_samples=512) == 0.2
    low = rl.AdaptiveKL(0.2, target=6.0, horizon=10_000)
    assert_close(low.update(kl=0.0, n_samples=512), 0.2 * (1 - 0.2 * 512 / 10_000))  # error clipped at -0.2
    restored = rl.AdaptiveKL(1.0)
    restored.load_state_dict(ctl.state_dict())
    assert restored.value == ctl.value and restored.target == 6.0


def test_score_sits_on_the_last_response_token_and_masks_stop_at_the_first_stop_id():
    responses = torch.tensor([[7, 8, 2, 2], [7, 2, 9, 9], [7, 8, 9, 6]])  # pad == EOS == 2 in row 0
    mask, ended = rl.response_mask(responses, stop_ids=[2])
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]] and ended.tolist() == [True, True, False]
    rewards = rl.shaped_rewards(torch.zeros(3, 4), torch.tensor([1.0, 2.0, 3.0]), mask, kl_coef=0.1)
    assert rewards.tolist() == [[0, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 3]]
    two_stops, _ = rl.response_mask(torch.tensor([[7, 5, 8, 2]]), stop_ids=[2, 5])  # EOS or end of turn
    assert two_stops.tolist() == [[1, 1, 0, 0]]
