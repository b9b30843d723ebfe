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


def logp_grads(objective: Objective, policy: Terms, reference: Terms | None,
               loss: LossConfig) -> tuple[Tensor, Tensor]:
    """Per-example ∂L/∂log π(y_w) and ∂L/∂log π(y_l) by autograd through the objective's own loss (float64).

    Unpaired feedback (KTO) has no y_l column: the first gradient is per row, the second is zeros.
    """
    policy64 = _float64(policy)
    chosen = policy64.chosen.requires_grad_()
    rejected = policy64.rejected.requires_grad_() if policy64.rejected is not None else None
    reference64 = None if reference is None else _float64(reference)
    with torch.enable_grad():
        wrt = (chosen, rejected) if rejected is not None else (chosen,)
        grads = torch.autograd.grad(objective.loss(policy64, reference64, loss).sum(), wrt, allow_unused=True)
    zeros = torch.zeros_like(chosen)
    grad_chosen, grad_rejected = grads[0], grads[1] if rejected is not None else None
    return (zeros if grad_chosen is None else grad_chosen), (zeros if grad_rejected is None else grad_rejected)


def log_grad_magnitude(grad_logp: Tensor, logps: Tensor) -> Tensor:
    """log|∂L/∂π(y)| from ∂L/∂log π(y) and log π(y): log|g| - log π (Corollary 1), never overflowing."""
    return torch.log(grad_logp.abs().clamp(min=TINY)) - logps.detach().double()


def log_grad_magnitudes(grad_chosen: Tensor, grad_rejected: Tensor, policy: Terms) -> tuple[Tensor, Tensor]:
    """log|∂L/∂π(y_w)| and log|∂L/∂π(y_l)| per example (Corollary 1)."""
    return log_grad_magnitude(grad_chosen, policy.chosen), log_grad_magnitude(grad_rejected, policy.rejected)


def batch_sums(objective: Objective, policy: Terms, reference: Terms | None, loss: LossConfig) -> dict[str, Tensor]:
    """Per-batch sums of the 3D statistics (divide by the example count to get means)."""
    out = {}
    if reference is not None:
        delta_chosen = (policy.chosen - reference.chosen).detach()
        delta_rejected = (policy.rejected - reference.rejected).detach()
        out["3d/delta_chosen"], out["3d/delta_rejected"] = delta_chosen.sum(), delta_rejected.sum()
        out["3d/chosen_below_ref_frac"] = (delta_chosen < 0).float().sum()
        out["logps/ref_chosen"], out["logps/ref_rejected"] = reference.chosen.sum(), reference.rejected.sum()
    log_chosen, log_rejected = log_grad_magnitudes(*logp_grads(objective, policy, reference, loss), policy)
    out["3d/log_grad_chosen"], out["3d/log_grad_rejected"] = log_chosen.sum().float(), log_rejected.sum().float()
    out["3d/log_grad_ratio"] = (log_rejected - log_chosen).sum().float()
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
