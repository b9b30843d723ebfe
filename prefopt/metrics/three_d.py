"""The paper's 3D-properties as per-batch statistics (sums on device; reduced once per logging step).

Property 1, drastic drop:  3d/delta_chosen, 3d/delta_rejected, 3d/drop_ratio, and Corollary 1's gradient
  magnitudes log|∂L/∂π(y_w)|, log|∂L/∂π(y_l)| in the log domain: ∂L/∂π = (∂L/∂log π) / π, so
  log|∂L/∂π| = log|∂L/∂log π| - log π, finite even when π underflows (log π = -300 is fine).
Property 2, degradation:   3d/chosen_below_ref_frac.
Property 3, dispersion:    3d/unseen_logp (probe set, elsewhere) and 3d/entropy.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from prefopt.objectives import Objective, Terms
from prefopt.schema import LossConfig

TINY = 1e-300  # floor for |∂L/∂log π| before the log (float64), so an exactly-zero gradient reads as ~-690


def _float64(terms: Terms) -> Terms:
    """A detached float64 copy (labels stay bool)."""
    return dataclasses.replace(terms, **{f.name: v.detach().double() for f in dataclasses.fields(terms)
                                         if torch.is_tensor(v := getattr(terms, f.name)) and v.is_floating_point()})


def logp_grads(obj: Objective, pol: Terms, ref: Terms | None, cfg: LossConfig) -> tuple[Tensor, Tensor]:
    """Per-example ∂L/∂log π(y_w) and ∂L/∂log π(y_l) by autograd through the objective's own loss (float64).

    Unpaired feedback (KTO) has no y_l column: the first gradient is per row, the second is zeros.
    """
    p = _float64(pol)
    c = p.chosen.requires_grad_()
    r = p.rejected.requires_grad_() if p.rejected is not None else None
    rf = None if ref is None else _float64(ref)
    with torch.enable_grad():
        wrt = (c, r) if r is not None else (c,)
        grads = torch.autograd.grad(obj.loss(p, rf, cfg).sum(), wrt, allow_unused=True)
    zeros = torch.zeros_like(c)
    g_c, g_r = grads[0], grads[1] if r is not None else None
    return (zeros if g_c is None else g_c), (zeros if g_r is None else g_r)


def log_grad_magnitudes(g_c: Tensor, g_r: Tensor, pol: Terms) -> tuple[Tensor, Tensor]:
    """log|∂L/∂π(y_w)| and log|∂L/∂π(y_l)| per example (Corollary 1), never overflowing."""
    lc = torch.log(g_c.abs().clamp(min=TINY)) - pol.chosen.detach().double()
    lr = torch.log(g_r.abs().clamp(min=TINY)) - pol.rejected.detach().double()
    return lc, lr


def batch_sums(obj: Objective, pol: Terms, ref: Terms | None, cfg: LossConfig) -> dict[str, Tensor]:
    """Per-batch sums of the 3D statistics (divide by the example count to get means)."""
    out = {}
    if ref is not None:
        d_c, d_r = (pol.chosen - ref.chosen).detach(), (pol.rejected - ref.rejected).detach()
        out["3d/delta_chosen"], out["3d/delta_rejected"] = d_c.sum(), d_r.sum()
        out["3d/chosen_below_ref_frac"] = (d_c < 0).float().sum()
        out["logps/ref_chosen"], out["logps/ref_rejected"] = ref.chosen.sum(), ref.rejected.sum()
    g_c, g_r = logp_grads(obj, pol, ref, cfg)
    lc, lr = log_grad_magnitudes(g_c, g_r, pol)
    out["3d/log_grad_chosen"], out["3d/log_grad_rejected"] = lc.sum().float(), lr.sum().float()
    out["3d/log_grad_ratio"] = (lr - lc).sum().float()
    return out


def finalize(means: dict[str, float]) -> dict[str, float]:
    """Ratios computed from reduced means: 3d/drop_ratio = |mean Δ_rejected| / |mean Δ_chosen|."""
    if "3d/delta_chosen" in means and "3d/delta_rejected" in means:
        means["3d/drop_ratio"] = abs(means["3d/delta_rejected"]) / max(abs(means["3d/delta_chosen"]), 1e-12)
    # unpaired feedback (KTO) averages each side over its own rows: margins and ratios from the means
    if "rewards/margins" not in means and "rewards/chosen" in means and "rewards/rejected" in means:
        means["rewards/margins"] = means["rewards/chosen"] - means["rewards/rejected"]
    if "3d/log_grad_ratio" not in means and "3d/log_grad_chosen" in means and "3d/log_grad_rejected" in means:
        means["3d/log_grad_ratio"] = means["3d/log_grad_rejected"] - means["3d/log_grad_chosen"]
    return means
