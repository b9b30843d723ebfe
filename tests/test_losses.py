"""Closed-form checks of every loss (numbers worked out below), flex-β identity, and the DPO+SFT gradient.

Two pairs, lengths 2 tokens each:
  pair 1: log π(y_w) = -1, log π(y_l) = -3, ref -2 / -2  ->  Δ_w = 1,  Δ_l = -1, h = 2
  pair 2: log π(y_w) = -5, log π(y_l) = -1, ref -4 / -2  ->  Δ_w = -1, Δ_l = 1,  h = -2
DPO, β = 0.1:      z = ±0.2;  -log σ(0.2) = log(1 + e^-0.2) = 0.5981388693,  -log σ(-0.2) = 0.7981388693
flex β⁺=.2 β⁻=.05: pair 1 z = 0.2·1 - 0.05·(-1) = 0.25;  log(1 + e^-0.25) = 0.5759394576
cDPO ε = 0.1:      pair 1: 0.9·0.5981388693 + 0.1·0.7981388693 = 0.6181388693
IPO τ = 0.1:       (h - 5)² = 9 and 49
SLiC δ=1, λ=0.5:   pair 1: max(0, 1 + 1 - 3) = 0, NLL = 1/2 -> 0.25;  pair 2: max(0, 1 + 5 - 1) = 5, NLL = 5/2 -> 6.25
SFT:               -(-1)/2 = 0.5 and -(-5)/2 = 2.5
Bradley-Terry:     r_w = 1, r_l = 0: log(1 + e^-1) = 0.3132616875; + 0.1·(1 + 0)² centering = 0.4132616875
"""


import torch
from torch.testing import assert_close

from prefopt import losses

PC, PR = torch.tensor([-1.0, -5.0], dtype=torch.float64), torch.tensor([-3.0, -1.0], dtype=torch.float64)
RC, RR = torch.tensor([-2.0, -4.0], dtype=torch.float64), torch.tensor([-2.0, -2.0], dtype=torch.float64)
LEN = torch.tensor([2.0, 2.0], dtype=torch.float64)
T = lambda *v: torch.tensor(v, dtype=torch.float64)


def test_dpo_closed_form():
    assert_close(losses.dpo(PC, PR, RC, RR, 0.1, 0.1), T(0.5981388693, 0.7981388693))


def test_flex_beta_closed_form():
    assert_close(losses.dpo(PC, PR, RC, RR, 0.2, 0.05)[0], T(0.5759394576)[0])


def test_flex_beta_with_equal_betas_is_vanilla_dpo_to_the_last_bit():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(1000, generator=g) * 50 for _ in range(4))
    for beta in (0.1, 0.05, 0.3, 1.7):
        vanilla = -torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr)))
        assert torch.equal(losses.dpo(pc, pr, rc, rr, beta, beta), vanilla)


def test_label_smoothing_closed_form():
    assert_close(losses.dpo(PC, PR, RC, RR, 0.1, 0.1, label_smoothing=0.1)[0], T(0.6181388693)[0])


def test_ipo_closed_form():
    assert_close(losses.ipo(PC, PR, RC, RR, tau=0.1), T(9.0, 49.0))


def test_slic_and_sft_closed_form():
    nll = losses.sft(PC, LEN)
    assert_close(nll, T(0.5, 2.5))
    assert_close(losses.slic(PC, PR, nll, delta=1.0, sft_weight=0.5), T(0.25, 6.25))


def test_bradley_terry_closed_form():
    assert_close(losses.bradley_terry(T(1.0), T(0.0)), T(0.3132616875))
    assert_close(losses.bradley_terry(T(1.0), T(0.0), center_weight=0.1), T(0.4132616875))


def test_dpo_sft_adds_weighted_nll():
    nll = losses.sft(PC, LEN)
    assert_close(losses.dpo_sft(PC, PR, RC, RR, nll, 0.1, 0.1, 0.5), losses.dpo(PC, PR, RC, RR, 0.1, 0.1) + 0.5 * nll)


def test_sft_weight_keeps_the_chosen_gradient_as_h_grows():
    """∂L/∂log π(y_w): DPO's is -β·σ(-βh) → 0 as h → ∞; with +λ·NLL it tends to -λ/|y_w| instead (Eq. 7)."""
    lam, beta = 0.5, 0.1
    for h in (10.0, 100.0, 400.0):
        pc = torch.tensor([h / 2], dtype=torch.float64, requires_grad=True)
        pr, ref = torch.tensor([-h / 2], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
        (g_dpo,) = torch.autograd.grad(losses.dpo(pc, pr, ref, ref, beta, beta).sum(), pc)
        assert_close(g_dpo, -beta * torch.sigmoid(torch.tensor([-beta * h], dtype=torch.float64)))
        nll = losses.sft(pc, torch.tensor([2.0], dtype=torch.float64))
        (g_sft,) = torch.autograd.grad(losses.dpo_sft(pc, pr, ref, ref, nll, beta, beta, lam).sum(), pc)
        assert abs(g_sft.item()) >= lam / 2 - 1e-12
    assert abs(g_dpo.item()) < 1e-15  # h = 400: vanilla DPO's chosen gradient has vanished
