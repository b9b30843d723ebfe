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
        ("simpo", LossConfig(beta=2.0, margin=0.5)), ("orpo", LossConfig(beta=0.1)))]
    for obj, cfg in [(OBJECTIVES[name], cfg) for name, cfg in (
            ("dpo", CFG), ("ipo", CFG), ("slic", LossConfig(delta=5.0, sft_weight=0.3)),
            ("dpo", LossConfig(beta_chosen=0.3, beta_rejected=0.05, sft_weight=0.2)))] + variants:
        pi_w, pi_l = D(0.3, 0.05).requires_grad_(), D(0.2, 0.4).requires_grad_()
        ref = terms((math.log(0.25), math.log(0.1)), (math.log(0.3), math.log(0.2)))
        loss = obj.loss(Terms(pi_w.log(), pi_l.log(), D(2.0, 3.0), D(2.0, 4.0)), ref, cfg).sum()
        d_w, d_l = torch.autograd.grad(loss, (pi_w, pi_l))
        pol = terms((math.log(0.3), math.log(0.05)), (math.log(0.2), math.log(0.4)))
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
