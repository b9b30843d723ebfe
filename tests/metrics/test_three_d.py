"""3D metrics: log|∂L/∂π| against autograd (w.r.t. π itself), the closed form, and extreme log-probs."""

import math

import torch
from torch.testing import assert_close

from prefopt.metrics.preference import Meter, batch_sums
from prefopt.metrics.three_d import log_grad_magnitudes, logp_grads
from prefopt.objectives import OBJECTIVES, VARIANTS, Terms
from prefopt.schema import LossConfig

CFG = LossConfig(beta=0.1, beta_chosen=0.1, beta_rejected=0.1)
D = lambda *v: torch.tensor(v, dtype=torch.float64)


def terms(c, r):
    return Terms(D(*c), D(*r), D(2.0, 3.0), D(2.0, 4.0))


def test_log_grads_match_autograd_with_respect_to_probabilities():
    variants = [(VARIANTS[name], cfg) for name, cfg in (
        ("rdpo", LossConfig(beta=0.2, label_smoothing=0.2)), ("nca", CFG), ("apo_zero", LossConfig(beta=0.5)),
        ("simpo", LossConfig(beta=2.0, margin=0.5)), ("orpo", LossConfig(beta=0.1)),
        ("odpo", LossConfig(beta=0.2, offset_scale=0.5)))]
    for obj, cfg in [(OBJECTIVES[name], cfg) for name, cfg in (
            ("dpo", CFG), ("ipo", CFG), ("slic", LossConfig(delta=5.0, sft_weight=0.3)),
            ("dpo", LossConfig(beta_chosen=0.3, beta_rejected=0.05, sft_weight=0.2)))] + variants:
        pi_w, pi_l = D(0.3, 0.05).requires_grad_(), D(0.2, 0.4).requires_grad_()
        ref = terms((math.log(0.25), math.log(0.1)), (math.log(0.3), math.log(0.2)))
        margin = D(3.0, 0.5)  # ODPO's score differences (the other losses ignore them)
        loss = obj.loss(Terms(pi_w.log(), pi_l.log(), D(2.0, 3.0), D(2.0, 4.0), score_margin=margin), ref, cfg).sum()
        d_w, d_l = torch.autograd.grad(loss, (pi_w, pi_l))
        pol = terms((math.log(0.3), math.log(0.05)), (math.log(0.2), math.log(0.4)))
        pol.score_margin = margin
        lc, lr = log_grad_magnitudes(*logp_grads(obj, pol, ref, cfg), pol)
        assert_close(lc, d_w.abs().log())
        assert_close(lr, d_l.abs().log())


def test_log_grads_stay_finite_where_probabilities_underflow():
    """log π = -500: ∂L/∂π = β·σ(-βh)/π overflows any float; its log is log β + log σ(-βh) + 500."""
    pol, ref = terms((-500.0, -600.0), (-700.0, -650.0)), terms((-510.0, -590.0), (-690.0, -660.0))
    lc, lr = log_grad_magnitudes(*logp_grads(OBJECTIVES["dpo"], pol, ref, CFG), pol)
    h = (pol.chosen - ref.chosen) - (pol.rejected - ref.rejected)
    expect_c = math.log(0.1) + torch.nn.functional.logsigmoid(-0.1 * h) - pol.chosen
    expect_r = math.log(0.1) + torch.nn.functional.logsigmoid(-0.1 * h) - pol.rejected
    assert torch.isfinite(lc).all() and torch.isfinite(lr).all()
    assert_close(lc, expect_c)
    assert_close(lr, expect_r)


def test_batch_metrics_and_meter():
    pol, ref = terms((-1.0, -5.0), (-3.0, -1.0)), terms((-2.0, -4.0), (-2.0, -2.0))
    obj = OBJECTIVES["dpo"]
    m = Meter()
    m.add(batch_sums(obj, pol, ref, CFG, obj.loss(pol, ref, CFG)), 2.0)
    out = m.reduce()
    assert_close(out["loss"], (0.5981388693 + 0.7981388693) / 2)
    assert_close(out["3d/delta_chosen"], 0.0)  # Δ_w = +1 and -1
    assert_close(out["3d/delta_rejected"], 0.0)
    assert out["3d/chosen_below_ref_frac"] == 0.5
    assert out["rewards/accuracies"] == 0.5
    assert_close(out["rewards/margins"], 0.0)  # β·h = +0.2 and -0.2
    assert_close(out["3d/log_grad_ratio"], ((-1 + 3) + (-5 + 1)) / 2)  # log π_w - log π_l for DPO
    assert m.sums == {}  # reset after a reduce


def test_kto_side_metrics_match_autograd_and_split_rows_by_label():
    """KTO rows: log|∂L/∂π| of the desirable rows is `3d/log_grad_chosen`, of the undesirable `..._rejected`."""
    from prefopt.metrics.preference import side_sums

    obj, cfg = OBJECTIVES["kto"], LossConfig(beta=0.5, desirable_weight=1.0, undesirable_weight=2.0)
    labels = torch.tensor([True, False, True])
    pi = D(0.3, 0.05, 0.2).requires_grad_()
    ref = Terms(D(-1.0, -2.0, -1.5), None, D(2.0, 3.0, 2.0), None, labels=labels, kl=D(-2.0, -2.0, -2.0))
    kl = D(-1.5, -2.5, -1.0)
    loss = obj.loss(Terms(pi.log(), None, D(2.0, 3.0, 2.0), None, labels=labels, kl=kl), ref, cfg).sum()
    (d_pi,) = torch.autograd.grad(loss, (pi,))
    pol = Terms(pi.detach().log(), None, D(2.0, 3.0, 2.0), None, labels=labels, kl=kl)
    good, bad = side_sums(obj, pol, ref, cfg)
    want = d_pi.abs().log()
    assert_close(good["3d/log_grad_chosen"].double(), want[0] + want[2], rtol=1e-6, atol=1e-6)
    assert_close(bad["3d/log_grad_rejected"].double(), want[1], rtol=1e-6, atol=1e-6)
    delta = pol.chosen - ref.chosen
    assert_close(good["3d/delta_chosen"], delta[0] + delta[2])
    assert_close(bad["rewards/rejected"], 0.5 * delta[1])
    m = Meter()
    m.add(good, 2.0)
    m.add(bad, 1.0)
    out = m.reduce()
    assert_close(out["rewards/margins"], 0.5 * float((delta[0] + delta[2]) / 2 - delta[1]))
    assert_close(out["3d/log_grad_ratio"], float(want[1] - (want[0] + want[2]) / 2), rtol=1e-6, atol=1e-6)
