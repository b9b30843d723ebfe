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
rDPO β=.1 ε=.1:    pair 1: (0.9·0.5981388693 - 0.1·0.7981388693) / 0.8 = 0.5731388694; pair 2: 0.8231388694
NCA β = 0.1:       pair 1: r_w = 0.1, r_l = -0.1: log(1+e^-0.1) + ½log(1+e^0.1) + ½log(1+e^-0.1) = 1.3387933201;
                   pair 2: r_w = -0.1, r_l = 0.1: 1.4387933201
APO-zero β = 0.1:  pair 1: 1 - σ(0.1) + σ(-0.1) = 0.9500416250;  pair 2: 1 - σ(-0.1) + σ(0.1) = 1.0499583750
SimPO β=2 γ=0.5:   pair 1: 2·(-1/2) - 2·(-3/2) - 0.5 = 1.5 -> log(1+e^-1.5) = 0.2014132780;
                   pair 2: -5 + 1 - 0.5 = -4.5 -> log(1+e^4.5) = 4.5110477448
ORPO λ = 0.1:      log odds(m) = m - log(1 - e^m): lo(-0.5) = 0.4327521296, lo(-1.5) = -1.2475175411,
                   lo(-2.5) = -2.4143495163; pair 1: 0.5 + 0.1·log(1 + e^-(0.4327521296 + 1.2475175411))
                   = 0.5170859217; pair 2: 2.5 + 0.1·log(1 + e^(0.4327521296 + 2.4143495163)) = 2.7903493527
ODPO β=.1 α=.5:    score margins 4 and 1: pair 1 z = 0.2 - 0.5·log 4 = -0.4931471806 -> log(1+e^0.4931471806)
                   = 0.9698169039; pair 2 z = -0.2 - 0.5·log 1 = -0.2 -> 0.7981388693 (as DPO: no offset)
KTO β=.5 λD=1 λU=2, rows log π = -1 (desirable), -3 (undesirable), ref -2 / -2 -> r = 1, -1:
                   KL rows r = -0.5, 0.5: z₀ = max(0, 0) = 0; 1 - σ(0.5) = 0.3775406688, 2 - 2σ(0.5) = 0.7550813376
                   KL rows r = 1, 2: z₀ = 1.5; 1 - σ(-0.25) = 0.5621765009, 2 - 2σ(1.25) = 0.4454002777
"""


import math

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


def test_rdpo_nca_apo_zero_closed_forms():
    assert_close(losses.rdpo(PC, PR, RC, RR, 0.1, 0.1), T(0.5731388694, 0.8231388694))
    assert_close(losses.nca_pair(PC, PR, RC, RR, 0.1), T(1.3387933201, 1.4387933201))
    assert_close(losses.apo_zero(PC, PR, RC, RR, 0.1), T(0.9500416250, 1.0499583750))


def test_rdpo_without_label_noise_is_vanilla_dpo_to_the_last_bit():
    g = torch.Generator().manual_seed(1)
    pc, pr, rc, rr = (torch.randn(1000, generator=g) * 50 for _ in range(4))
    for beta in (0.1, 0.5, 2.0):
        assert torch.equal(losses.rdpo(pc, pr, rc, rr, beta, 0.0), losses.dpo(pc, pr, rc, rr, beta, beta))


def test_simpo_and_orpo_closed_forms():
    assert_close(losses.simpo(PC, PR, LEN, LEN, 2.0, 0.5), T(0.2014132780, 4.5110477448))
    assert_close(losses.log_odds(T(-0.5, -1.5, -2.5)), T(0.4327521296, -1.2475175411, -2.4143495163))
    assert_close(losses.orpo(PC, PR, LEN, LEN, 0.1), T(0.5170859217, 2.7903493527))


def test_log_odds_stays_finite_near_certainty_and_for_long_unlikely_responses():
    m = T(-1e-12, -50.0, -700.0)  # P = 1 - 1e-12, P = e^-50, P = e^-700 (underflows as a probability)
    got = losses.log_odds(m)
    assert torch.isfinite(got).all()
    assert_close(got, T(math.log(1e12), -50.0, -700.0), rtol=1e-6, atol=1e-6)


def test_odpo_closed_form_and_zero_offset_is_vanilla_dpo_to_the_last_bit():
    assert_close(losses.odpo(PC, PR, RC, RR, T(4.0, 1.0), 0.1, 0.5), T(0.9698169039, 0.7981388693))
    g = torch.Generator().manual_seed(2)
    pc, pr, rc, rr = (torch.randn(1000, generator=g) * 50 for _ in range(4))
    margin = torch.rand(1000, generator=g) * 4 + 0.1
    for beta in (0.1, 0.5, 2.0):
        assert torch.equal(losses.odpo(pc, pr, rc, rr, margin, beta, 0.0), losses.dpo(pc, pr, rc, rr, beta, beta))
    # a larger score margin asks for a larger log-ratio margin: the loss at the same h grows with it
    assert (losses.odpo(pc, pr, rc, rr, margin * 2, 0.1, 1.0) > losses.odpo(pc, pr, rc, rr, margin, 0.1, 1.0)).all()


def test_kto_closed_form_and_its_kl_reference_point_carries_no_gradient():
    desirable = torch.tensor([True, False])
    logps = T(-1.0, -3.0).requires_grad_()
    kl = T(-2.5, -1.5).requires_grad_()
    loss = losses.kto(logps, T(-2.0, -2.0), kl, T(-2.0, -2.0), desirable, 0.5, 1.0, 2.0)
    assert_close(loss, T(0.3775406688, 0.7550813376))
    assert_close(losses.kto(logps, T(-2.0, -2.0), T(-1.0, 0.0), T(-2.0, -2.0), desirable, 0.5, 1.0, 2.0),
                 T(0.5621765009, 0.4454002777))
    g_logps, g_kl = torch.autograd.grad(loss.sum(), (logps, kl), allow_unused=True)
    assert g_kl is None  # z₀ is detached (paper §4.1)
    # ∂/∂r of λ_D(1 - σ(β(r - z₀))) is -λ_D·β·σ'(·); of λ_U(1 - σ(β(z₀ - r))) is +λ_U·β·σ'(·)
    s = torch.sigmoid(T(0.5))
    assert_close(g_logps, T(-0.5 * s * (1 - s), 2.0 * 0.5 * s * (1 - s)))


def test_dpop_closed_form_its_penalty_acts_only_below_the_reference_and_without_it_is_vanilla_dpo():
    """DPO-Positive, β = 0.1, λ = 2, on PC, PR, RC, RR: Δ_w = (1, -1), Δ_l = (-1, 1), h = (2, -2).

    Pair 1 (Δ_w > 0, no penalty): -log σ(0.1·2) = log(1 + e^-0.2) = 0.5981388693.
    Pair 2 (Δ_w = -1): z = 0.1·(-2 - 2·1) = -0.4, -log σ(-0.4) = log(1 + e^0.4) = 0.9130152802.
    ∂L/∂log π(y_w) = -σ(-z)·∂z/∂log π(y_w): pair 1: -σ(-0.2)·0.1 = -0.0450166003; pair 2 (z = β((1+λ)Δ_w - Δ_l)):
    -σ(0.4)·0.3 = -0.1796062980.
    """
    chosen = PC.clone().requires_grad_()
    loss = losses.dpop(chosen, PR, RC, RR, 0.1, 2.0)
    assert_close(loss, T(0.5981388693, 0.9130152802))
    (grad,) = torch.autograd.grad(loss.sum(), chosen)
    assert_close(grad, T(-0.0450166003, -0.1796062980))
    g = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (torch.randn(1000, generator=g) * 50 for _ in range(4))
    assert torch.equal(losses.dpop(pc, pr, rc, rr, 0.1, 0.0), losses.dpo(pc, pr, rc, rr, 0.1, 0.1))
    above = pc > rc  # where the chosen likelihood is above the reference, λ changes nothing
    assert torch.equal(losses.dpop(pc, pr, rc, rr, 0.1, 50.0)[above], losses.dpo(pc, pr, rc, rr, 0.1, 0.1)[above])
