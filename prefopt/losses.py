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


def rdpo(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
         beta: float, label_noise: float) -> Tensor:
    """Robust DPO (Chowdhury et al. 2024, Eq. 8): an unbiased DPO loss when each label is flipped with rate ε.

    L = [(1-ε)·ℓ(βh) - ε·ℓ(-βh)] / (1 - 2ε), ℓ(z) = -log σ(z). With ε = 0 it is vanilla DPO bit for bit.
    """
    z = beta * ((chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps))
    return ((1 - label_noise) * -F.logsigmoid(z) - label_noise * -F.logsigmoid(-z)) / (1 - 2 * label_noise)


def nca_pair(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
             beta: float) -> Tensor:
    """Pairwise noise-contrastive alignment (Chen et al. 2024, NCA with K = 2): rewards r = β·Δ, and
    L = -log σ(r_w) - ½·log σ(-r_w) - ½·log σ(-r_l): it raises the chosen likelihood itself, not only the margin."""
    r_w, r_l = beta * (chosen_logps - ref_chosen_logps), beta * (rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(r_w) - 0.5 * F.logsigmoid(-r_w) - 0.5 * F.logsigmoid(-r_l)


def apo_zero(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
             beta: float) -> Tensor:
    """Anchored preference optimisation, APO-zero (D'Oosterlinck et al. 2024, Eq. 7): push the chosen
    likelihood up and the rejected one down, each anchored at the reference: L = 1 - σ(βΔ_w) + σ(βΔ_l)."""
    return 1 - torch.sigmoid(beta * (chosen_logps - ref_chosen_logps)) + \
        torch.sigmoid(beta * (rejected_logps - ref_rejected_logps))


def simpo(chosen_logps: Tensor, rejected_logps: Tensor, chosen_tokens: Tensor, rejected_tokens: Tensor,
          beta: float, margin: float) -> Tensor:
    """SimPO (Meng et al. 2024, Eq. 6), reference-free: L = -log σ(β/|y_w|·log π(y_w) - β/|y_l|·log π(y_l) - γ)."""
    z = beta * chosen_logps / chosen_tokens.clamp(min=1) - beta * rejected_logps / rejected_tokens.clamp(min=1)
    return -F.logsigmoid(z - margin)


def log_odds(mean_logps: Tensor) -> Tensor:
    """log(P / (1 - P)) of a per-token-mean likelihood P = exp(mean log π) < 1, computed without forming P."""
    return mean_logps - torch.log(-torch.expm1(mean_logps))


def orpo(chosen_logps: Tensor, rejected_logps: Tensor, chosen_tokens: Tensor, rejected_tokens: Tensor,
         weight: float) -> Tensor:
    """ORPO (Hong et al. 2024, Eq. 6-7), reference-free: NLL(y_w) + λ·(-log σ(log odds(y_w) - log odds(y_l))),
    odds over the length-normalised likelihood P(y|x) = exp(mean token log π)."""
    mean_w, mean_l = chosen_logps / chosen_tokens.clamp(min=1), rejected_logps / rejected_tokens.clamp(min=1)
    return -mean_w - weight * F.logsigmoid(log_odds(mean_w) - log_odds(mean_l))


def odpo(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
         score_margin: Tensor, beta: float, offset_scale: float) -> Tensor:
    """DPO with an offset (Amini et al. 2024, Eq. 9): L = -log σ(βh - Δ_r), Δ_r = α·log(s_w - s_l).

    The offset asks for a larger margin where the judge preferred y_w more strongly (§4 uses f = log of the
    score difference). With α = 0 it is vanilla DPO bit for bit.
    """
    h = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
    offset = offset_scale * torch.log(score_margin.to(h.dtype))
    return -F.logsigmoid(beta * h - offset)


def dpop(chosen_logps: Tensor, rejected_logps: Tensor, ref_chosen_logps: Tensor, ref_rejected_logps: Tensor,
         beta: float, positive_weight: float) -> Tensor:
    """DPO-Positive (Pal et al. 2024, "Smaug", Eq. 3): L = -log σ(β·(h - λ·max(0, -Δ_w))).

    When y_w and y_l differ in a few tokens (a maths answer's last digit), DPO can raise h while lowering
    log π(y_w) (the paper's Degradation); the penalty acts only once Δ_w < 0. With λ = 0 it is vanilla DPO.
    """
    delta_w = chosen_logps - ref_chosen_logps
    h = delta_w - (rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * (h - positive_weight * torch.clamp(-delta_w, min=0)))


def kto(logps: Tensor, ref_logps: Tensor, kl_logps: Tensor, ref_kl_logps: Tensor, desirable: Tensor, beta: float,
        desirable_weight: float, undesirable_weight: float) -> Tensor:
    """KTO (Ethayarajh et al. 2024, Eq. 8) on unpaired feedback: L = λ_y - v(x, y), with r = log π/π_ref and
    v = λ_D·σ(β(r - z₀)) for a desirable y, λ_U·σ(β(z₀ - r)) for an undesirable one.

    z₀ = max(0, mean KL estimate) over the batch's mismatched pairs (each prompt with another row's completion),
    detached as in the paper (§4.1): it only sets the reference point, it is not optimised.
    """
    r = logps - ref_logps
    z0 = (kl_logps - ref_kl_logps).mean().clamp(min=0).detach()
    weight = torch.where(desirable, torch.full_like(r, desirable_weight), torch.full_like(r, undesirable_weight))
    value = weight * torch.sigmoid(beta * torch.where(desirable, r - z0, z0 - r))
    return weight - value
