"""Preference and SFT losses: pure functions of per-sequence log-probs that return per-example losses.

Notation (paper §2-3): π = policy, π_ref = reference, y_w = chosen, y_l = rejected, and
    Δ_w = log π(y_w|x) - log π_ref(y_w|x),   Δ_l = log π(y_l|x) - log π_ref(y_l|x),   h = Δ_w - Δ_l.
Reduction over the batch happens in the caller; no function here reads a config or a model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sft(chosen_logps: Tensor, chosen_tokens: Tensor) -> Tensor:
    """Token-mean NLL over the response: -log π(y|x) / |y|."""
    return -chosen_logps / chosen_tokens.clamp(min=1)


def dpo(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
        beta_chosen: float, beta_rejected: float, label_smoothing: float = 0.0) -> Tensor:
    """DPO (paper Eq. 5) with flex-β (§3.3, App. B.2.1) and cDPO label smoothing ε.

    z = β⁺·Δ_w - β⁻·Δ_l = β⁻·h + (β⁺ - β⁻)·Δ_w; loss = -(1-ε)·log σ(z) - ε·log σ(-z).
    The second form makes β⁺ = β⁻ = β compute z = β·h bit for bit: flex-β then *is* vanilla DPO.
    """
    delta_w = chosen_logps - ref_chosen_logps
    h = delta_w - (rejected_logps - ref_rejected_logps)
    z = beta_rejected * h + (beta_chosen - beta_rejected) * delta_w
    return -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)


def dpo_sft(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
            chosen_nll: Tensor, beta_chosen: float, beta_rejected: float, sft_weight: float,
            label_smoothing: float = 0.0) -> Tensor:
    """DPO + SFT (paper Eq. 7): L_DPO + λ·NLL(y_w), which keeps a gradient on y_w as h → ∞.

    `chosen_nll` is `sft(...)` of the chosen response: token-mean, whatever `loss.logps` says for the DPO term.
    """
    pref = dpo(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta_chosen, beta_rejected,
               label_smoothing)
    return pref + sft_weight * chosen_nll


def ipo(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
        tau: float) -> Tensor:
    """IPO (Azar et al. Eq. 17; paper Eq. 8): (h - 1/(2τ))²."""
    h = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
    return (h - 1 / (2 * tau)) ** 2


def slic(chosen_logps: Tensor, rejected_logps: Tensor, chosen_nll: Tensor, delta: float, sft_weight: float) -> Tensor:
    """SLiC-HF (paper Eq. 11): max(0, δ - log π(y_w|x) + log π(y_l|x)) + λ·NLL(y_w). No reference."""
    return torch.clamp(delta - chosen_logps + rejected_logps, min=0) + sft_weight * chosen_nll


def bradley_terry(chosen_rewards: Tensor, rejected_rewards: Tensor, center_weight: float = 0.0) -> Tensor:
    """Reward-model loss (paper Eq. 3): -log σ(r(x,y_w) - r(x,y_l)), plus optional centering w·(r_w + r_l)²."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards) + center_weight * (chosen_rewards + rejected_rewards) ** 2
