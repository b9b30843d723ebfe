"""PPO's pure functions over per-token tensors [rows, T] with a 0/1 `mask` of response tokens.

Notation: log π / log π_ref per token (logits / T), values V_t from the critic, per-token rewards r_t, discount γ,
GAE λ, clip ε. References: Schulman et al. 2017 (PPO, Eq. 7 clipped objective), Schulman et al. 2016 (GAE, Eq. 16),
Ziegler et al. 2019 (KL-shaped reward, §2.2, and the adaptive KL controller), Ouyang et al. 2022 (Eq. 2), and
Huang et al. 2024, "The N implementation details of RLHF with PPO". Nothing here reads a config or a model.
"""

from __future__ import annotations

import torch
from torch import Tensor


def response_mask(responses: Tensor, stop_ids: list[int]) -> tuple[Tensor, Tensor]:
    """(mask, ended): 1 up to and including the first stop token of each row; whether a row has a stop token.

    Found from the stop ids themselves, never from the pad id, so a tokenizer whose pad equals EOS is handled.

    >>> response_mask(torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8]]), stop_ids=[2])
    (tensor([[1, 1, 0, 0],
            [1, 1, 1, 1]]), tensor([ True, False]))
    """
    is_stop = torch.zeros_like(responses, dtype=torch.bool)
    for sid in stop_ids:
        is_stop |= responses == sid
    ended = is_stop.any(-1)
    before_stop = (is_stop.long().cumsum(-1) - is_stop.long()) == 0  # no stop token strictly before this position
    return before_stop.long(), ended


def kl_penalty(logps: Tensor, ref_logps: Tensor, estimator: str) -> Tensor:
    """Per-token KL estimate of π from π_ref on sampled tokens: k1 = log π - log π_ref, k3 = (r - 1) - log r with
    r = π_ref / π (Schulman 2020, "Approximating KL divergence"; k3 is unbiased and never negative).

    With log π = -1 and log π_ref = -2: k1 = 1, k3 = e⁻¹ - 1 + 1 = e⁻¹.
    """
    log_ratio = logps - ref_logps
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r} (k1, k3)")


def shaped_rewards(kl: Tensor, scores: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """r_t = -β·KL_t on every response token, plus the sequence score on its last one (Ziegler et al. §2.2).

    The last token is the stop token when the response ended, else the last sampled token.

    >>> shaped_rewards(torch.tensor([[0.5, 1.0, 9.0]]), torch.tensor([2.0]), torch.tensor([[1, 1, 0]]), 0.1)
    tensor([[-0.0500,  1.9000, -0.0000]])
    """
    rewards = -kl_coef * (kl * mask)
    last = (mask.sum(-1) - 1).clamp(min=0).long()
    return rewards.scatter_add(1, last[:, None], scores[:, None].to(rewards.dtype))


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, Eq. 16): (advantages, returns = A + V).

    δ_t = r_t + γ·V_{t+1} - V_t with V = 0 after the last response token; A_t = δ_t + γλ·A_{t+1}.
    Masked positions (padding after the response) are zeroed first, so whatever they hold changes nothing.

    Worked numbers: r = [0, 0, 1], V = 0, γ = 1, λ = 0.95 -> δ = [0, 0, 1], A = [0.95², 0.95, 1] = [0.9025, 0.95, 1].
    r = [0, 0, 1], V = 0.5, γ = 0.9, λ = 0.8 -> δ = [-0.05, -0.05, 0.5], A_2 = 0.5, A_1 = -0.05 + 0.72·0.5 = 0.31,
    A_0 = -0.05 + 0.72·0.31 = 0.1732; returns = [0.6732, 0.81, 1.0].
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x over the positions where mask is 1."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over the masked positions (population variance), zero elsewhere.

    [1, 2, 3, 4] with mask [0, 1, 1, 0]: mean 2.5, std 0.5 -> [0, -1, 1, 0].
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def policy_loss(logps: Tensor, old_logps: Tensor, advantages: Tensor, mask: Tensor, clip: float) -> tuple[Tensor, dict]:
    """Clipped surrogate (Schulman et al. 2017, Eq. 7), as a loss: mean of max(-A·ρ, -A·clip(ρ, 1-ε, 1+ε)).

    Returns the loss and detached stats: clip fraction, approx-KL (k3 of old from new: mean of (ρ-1) - log ρ,
    Huang et al. detail 12), and the ratio's mean and variance. Per token with ε = 0.2:
      A = +1: ρ = 0.5 -> -0.5 (grad -1), ρ = 1.1 -> -1.1 (grad -1), ρ = 1.5 -> -1.2 (clipped, grad 0);
      A = -1: ρ = 0.5 -> 0.8 (clipped, grad 0), ρ = 1.1 -> 1.1 (grad +1), ρ = 1.5 -> 1.5 (grad +1).
    """
    log_ratio = (logps - old_logps) * mask
    ratio = torch.exp(log_ratio)
    unclipped, clipped = -advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        mean_ratio = masked_mean(ratio, mask)
        stats = {"clipfrac": masked_mean((clipped > unclipped).float(), mask),
                 "approxkl": masked_mean(ratio - 1 - log_ratio, mask),
                 "ratio": mean_ratio, "ratio_var": masked_mean((ratio - mean_ratio) ** 2, mask)}
    return loss, stats


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float) -> tuple[Tensor, Tensor]:
    """Clipped value loss (Huang et al. detail 9): 0.5·mean of max((V - R)², (clip(V, V_old ± ε) - R)²); clip frac.

    v = 0.5, v_old = 0, R = 1, ε = 0.2: unclipped 0.25, clipped (0.2 - 1)² = 0.64 -> 0.32, and zero gradient.
    """
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    unclipped, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask).detach()


class AdaptiveKL:
    """The KL coefficient β, fixed or adapted towards a target KL (Ziegler et al. 2019, §2.2).

    e = clip(KL / target - 1, -0.2, 0.2); β <- β·(1 + e·n / horizon), n = samples in the update.
    β 0.2, target 6, horizon 10⁴, n 512, KL 12: e = 0.2, β = 0.2·(1 + 0.2·512/10⁴) = 0.202048.
    """

    def __init__(self, value: float, target: float | None = None, horizon: float = 10_000):
        self.value, self.target, self.horizon = value, target, horizon

    def update(self, kl: float, n_samples: int) -> float:
        """Adapt β to the update's measured KL (no change when no target is set); returns the new β."""
        if self.target:
            error = min(max(kl / self.target - 1, -0.2), 0.2)
            self.value *= 1 + error * n_samples / self.horizon
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.target, self.horizon = state["value"], state["target"], state["horizon"]
