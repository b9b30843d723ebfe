"""TRL-compatible preference metrics, and the on-device meter that reduces all metrics once per logging step."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from prefopt.metrics import three_d
from prefopt.objectives import Objective, Terms
from prefopt.schema import LossConfig


def batch_sums(objective: Objective, policy: Terms, reference: Terms | None, loss: LossConfig,
               per_example: Tensor) -> dict:
    """Sums over the batch of loss, rewards/*, logps/* and (for log-prob objectives) the 3d/* statistics."""
    out = {"loss": per_example.detach().sum()}
    if objective.data_kind == "unpaired":  # the rest comes per side: see side_sums
        return out
    if objective.has_logps:
        out["logps/chosen"] = policy.chosen.detach().sum()
        out["logps/chosen_per_token"] = (policy.chosen / policy.chosen_tokens.clamp(min=1)).detach().sum()
    if not objective.pairwise:
        return out
    if objective.has_logps:
        out["logps/rejected"] = policy.rejected.detach().sum()
        out["logps/rejected_per_token"] = (policy.rejected / policy.rejected_tokens.clamp(min=1)).detach().sum()
    reward_chosen, reward_rejected = (x.detach() for x in objective.rewards(policy, reference, loss))
    out.update({"rewards/chosen": reward_chosen.sum(), "rewards/rejected": reward_rejected.sum(),
                "rewards/margins": (reward_chosen - reward_rejected).sum(),
                "rewards/accuracies": (reward_chosen > reward_rejected).float().sum()})
    if objective.has_logps:
        out.update(three_d.batch_sums(objective, policy, reference, loss))
    return out


def side_sums(objective: Objective, policy: Terms, reference: Terms, loss: LossConfig) -> tuple[dict, dict]:
    """Unpaired feedback (KTO): sums over the desirable rows (`*chosen*` keys) and over the undesirable rows
    (`*rejected*` keys), so a KTO run reports the same logps/*, rewards/* and 3d/* names as a DPO run."""
    grad, _ = three_d.logp_grads(objective, policy, reference, loss)
    log_grad = three_d.log_grad_magnitude(grad, policy.chosen).float()
    delta = (policy.chosen - reference.chosen).detach()
    out = []
    for side, mask in (("chosen", policy.labels), ("rejected", ~policy.labels)):
        weight = mask.float()
        sums = {f"logps/{side}": (policy.chosen.detach() * weight).sum(),
                f"logps/ref_{side}": (reference.chosen * weight).sum(),
                f"logps/{side}_per_token": (policy.chosen.detach() / policy.chosen_tokens.clamp(min=1) * weight).sum(),
                f"rewards/{side}": (loss.beta * delta * weight).sum(), f"3d/delta_{side}": (delta * weight).sum(),
                f"3d/log_grad_{side}": (log_grad * weight).sum()}
        if side == "chosen":
            sums["3d/chosen_below_ref_frac"] = ((delta < 0).float() * weight).sum()
        out.append(sums)
    return out[0], out[1]


class Meter:
    """Accumulates named sums and counts on device; `reduce()` does one all-reduce and one host copy."""

    def __init__(self):
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, float] = {}

    def add(self, sums: dict[str, Tensor], count: float) -> None:
        """Add a batch's sums; `count` (examples, or tokens for per-token stats) is known on the host."""
        for k, v in sums.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0.0) + count

    def reduce(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        """Means over all ranks; `extra` host values (e.g. flags, token counts) are summed across ranks too."""
        keys = sorted(self.sums)
        extra = extra or {}
        if not keys and not extra:
            return {}
        device = self.sums[keys[0]].device if keys else torch.device("cpu")
        vals = [self.sums[k] for k in keys] + [torch.tensor(float(self.counts[k]), device=device) for k in keys]
        vals += [torch.tensor(float(v), device=device) for v in extra.values()]
        packed = torch.stack([v.to(device) for v in vals])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(packed)
        host = packed.tolist()
        n = len(keys)
        out = {k: host[i] / max(host[n + i], 1e-12) for i, k in enumerate(keys)}
        out.update({k: host[2 * n + j] for j, k in enumerate(extra)})
        self.sums, self.counts = {}, {}
        return three_d.finalize(out)
