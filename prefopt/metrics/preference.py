"""TRL-compatible preference metrics, and the on-device meter that reduces all metrics once per logging step."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from prefopt.metrics import three_d
from prefopt.objectives import Objective, Terms
from prefopt.schema import LossConfig


def batch_sums(obj: Objective, pol: Terms, ref: Terms | None, cfg: LossConfig, per_example: Tensor) -> dict:
    """Sums over the batch of loss, rewards/*, logps/* and (for log-prob objectives) the 3d/* statistics."""
    out = {"loss": per_example.detach().sum()}
    if obj.data_kind == "unpaired":  # the rest comes per side: see side_sums
        return out
    if obj.has_logps:
        out["logps/chosen"] = pol.chosen.detach().sum()
        out["logps/chosen_per_token"] = (pol.chosen / pol.chosen_tokens.clamp(min=1)).detach().sum()
    if not obj.pairwise:
        return out
    if obj.has_logps:
        out["logps/rejected"] = pol.rejected.detach().sum()
        out["logps/rejected_per_token"] = (pol.rejected / pol.rejected_tokens.clamp(min=1)).detach().sum()
    r_c, r_r = (x.detach() for x in obj.rewards(pol, ref, cfg))
    out.update({"rewards/chosen": r_c.sum(), "rewards/rejected": r_r.sum(), "rewards/margins": (r_c - r_r).sum(),
                "rewards/accuracies": (r_c > r_r).float().sum()})
    if obj.has_logps:
        out.update(three_d.batch_sums(obj, pol, ref, cfg))
    return out


def side_sums(obj: Objective, pol: Terms, ref: Terms, cfg: LossConfig) -> tuple[dict, dict]:
    """Unpaired feedback (KTO): sums over the desirable rows (`*chosen*` keys) and over the undesirable rows
    (`*rejected*` keys), so a KTO run reports the same logps/*, rewards/* and 3d/* names as a DPO run."""
    g, _ = three_d.logp_grads(obj, pol, ref, cfg)
    log_grad = (torch.log(g.abs().clamp(min=three_d.TINY)) - pol.chosen.detach().double()).float()
    delta = (pol.chosen - ref.chosen).detach()
    out = []
    for side, mask in (("chosen", pol.labels), ("rejected", ~pol.labels)):
        m = mask.float()
        sums = {f"logps/{side}": (pol.chosen.detach() * m).sum(), f"logps/ref_{side}": (ref.chosen * m).sum(),
                f"logps/{side}_per_token": (pol.chosen.detach() / pol.chosen_tokens.clamp(min=1) * m).sum(),
                f"rewards/{side}": (cfg.beta * delta * m).sum(), f"3d/delta_{side}": (delta * m).sum(),
                f"3d/log_grad_{side}": (log_grad * m).sum()}
        if side == "chosen":
            sums["3d/chosen_below_ref_frac"] = ((delta < 0).float() * m).sum()
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
