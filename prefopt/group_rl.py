"""Group-relative RL's pure functions: advantages from each prompt's group of responses, the clipped surrogate
with separate lower and upper clips, and the three ways to average a per-token loss.

References: Shao et al. 2024 (DeepSeekMath, GRPO, Eq. 3 and §4.1.2), Liu et al. 2025 ("Understanding R1-Zero-like
training", Dr. GRPO, §3.1), Ahmadian et al. 2024 ("Back to basics", RLOO, Eq. 5), Yu et al. 2025 (DAPO, Eq. 8-10:
clip-higher, token-level loss, dynamic sampling). Per-token tensors hold every response token, flat and in
row-major order, as prefopt/logprobs.py gives them. Nothing here reads a config or a model.
"""

from __future__ import annotations

import torch
from torch import Tensor

STD_EPS = 1e-4  # added to the group std before dividing (as TRL's GRPO does): an all-equal group stays at 0


def group_advantages(rewards: Tensor, groups: Tensor, kind: str) -> Tensor:
    """One advantage per response from the rewards of its group (`groups[i]`: the prompt index of response i).

    grpo (Shao et al. §4.1.2): (r - mean) / (std + 1e-4), std the sample standard deviation (n - 1, torch.std's
    default, as in TRL and verl); dr_grpo (Liu et al. §3.1): r - mean, no division, which removes the
    question-level difficulty bias; rloo (Ahmadian et al. Eq. 5): r_i - mean of the *other* responses' rewards.

    Rewards [1, 0, 0, 1] (one group): mean 0.5, sample std √(1/3) = 0.57735, so
      grpo    ±0.5 / (0.57735 + 1e-4) = [0.86588, -0.86588, -0.86588, 0.86588];
      dr_grpo [0.5, -0.5, -0.5, 0.5];
      rloo    1 - 1/3 = 2/3 and 0 - 2/3 → [2/3, -2/3, -2/3, 2/3] (= n/(n-1) · dr_grpo).
    An all-equal group gets zeros under all three.

    >>> group_advantages(torch.tensor([1., 0., 0., 1., 3., 3.]), torch.tensor([0, 0, 0, 0, 1, 1]), "dr_grpo")
    tensor([ 0.5000, -0.5000, -0.5000,  0.5000,  0.0000,  0.0000])
    """
    n_groups = int(groups.max()) + 1 if groups.numel() else 0
    count = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, torch.ones_like(rewards))
    total = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, rewards)
    mean = (total / count)[groups]
    if kind == "dr_grpo":
        return rewards - mean
    if kind == "rloo":
        n = count[groups]
        return (rewards - (total[groups] - rewards) / (n - 1).clamp(min=1)) * (n > 1)
    if kind == "grpo":
        sq = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, (rewards - mean) ** 2)
        std = (sq / (count - 1).clamp(min=1)).sqrt()[groups]
        return (rewards - mean) / (std + STD_EPS)
    raise ValueError(f"unknown advantage {kind!r} (grpo, dr_grpo, rloo)")


def group_std(rewards: Tensor, groups: Tensor) -> Tensor:
    """Per group: the population standard deviation of its rewards (a metric: how much a group disagrees)."""
    n_groups = int(groups.max()) + 1 if groups.numel() else 0
    count = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, torch.ones_like(rewards))
    mean = (torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, rewards) / count)[groups]
    return (torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, (rewards - mean) ** 2) / count).sqrt()


def equal_groups(rewards: Tensor, groups: Tensor) -> Tensor:
    """Per response: whether every response of its group has the same reward (such a group carries no signal)."""
    n_groups = int(groups.max()) + 1 if groups.numel() else 0
    high = torch.full((n_groups,), -torch.inf, dtype=rewards.dtype).scatter_reduce(0, groups, rewards, "amax")
    low = torch.full((n_groups,), torch.inf, dtype=rewards.dtype).scatter_reduce(0, groups, rewards, "amin")
    return (high == low)[groups]


def clipped_surrogate(logps: Tensor, old_logps: Tensor, advantages: Tensor, clip_low: float,
                      clip_high: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-token clipped surrogate as a loss (Shao et al. Eq. 3; DAPO Eq. 10 for separate clips):
    max(-A·ρ, -A·clip(ρ, 1 - ε_low, 1 + ε_high)), ρ = π/π_old, with A given per token (its row's advantage).

    Returns (loss, ratio, clipped_low, clipped_high): where the clip is active, the gradient is zero. With
    ε_low = 0.2, ε_high = 0.28 (∂/∂ρ in brackets): A = +1, ρ = 1.3 → -1.28 (clipped high, 0); ρ = 1.2 → -1.2 (-1);
    A = -1, ρ = 0.7 → 0.8 (clipped low, 0); ρ = 0.9 → 0.9 (+1); ρ = 1.5 → 1.5 (never clipped above, +1).
    """
    ratio = torch.exp(logps - old_logps)
    unclipped, clipped = -advantages * ratio, -advantages * ratio.clamp(1 - clip_low, 1 + clip_high)
    with torch.no_grad():
        active = clipped > unclipped
        low, high = active & (advantages < 0), active & (advantages > 0)
    return torch.maximum(unclipped, clipped), ratio, low, high


def aggregate(per_token: Tensor, row_length: Tensor, how: str, tokens: float, rows: float) -> Tensor:
    """A flat per-token loss summed into this micro-batch's share of a minibatch's loss.

    `row_length` holds, per token, the length of the response it belongs to; `tokens` and `rows` count the whole
    (global) minibatch, so that micro-batches and ranks add up to the minibatch's loss exactly:
      token_mean (Yu et al. Eq. 10): Σ l / tokens: every token weighs the same, in long responses too;
      seq_mean_token_sum (Liu et al. §3.1): Σ l / rows: no division by a response's own length;
      seq_mean_token_mean (Shao et al. Eq. 3): Σ_rows (Σ_t l / |o|) / rows.
    Two rows of lengths 1 and 3, per-token losses a | b, c, d: (a + b + c + d) / 4; (a + b + c + d) / 2;
    (a + (b + c + d) / 3) / 2.
    """
    if how == "token_mean":
        return per_token.sum() / tokens
    if how == "seq_mean_token_sum":
        return per_token.sum() / rows
    if how == "seq_mean_token_mean":
        return (per_token / row_length).sum() / rows
    raise ValueError(f"unknown loss aggregation {how!r} (token_mean, seq_mean_token_sum, seq_mean_token_mean)")


def k3(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """Per-token KL(π ‖ π_ref) estimate on sampled tokens, k3 = ρ - 1 - log ρ with ρ = π_ref / π (Schulman 2020;
    GRPO's Eq. 4): unbiased, never negative, and with gradient π_ref/π - 1 pushing π towards π_ref."""
    log_ratio = ref_logps - logps
    return torch.expm1(log_ratio) - log_ratio
