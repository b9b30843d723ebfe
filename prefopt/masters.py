"""fp32 master weights for a bf16 model at ZeRO stage 0, stepped a bounded slice of parameters at a time.

The model computes in bf16; AdamW updates fp32 copies ("masters") and their fp32 moments, because bf16 cannot
hold a small update to a weight of ordinary size. DeepSpeed's own stage-0 wrapper for bf16 (FP16_UnfusedOptimizer)
does the same, but it converts every gradient to fp32 before stepping any: 4 bytes per parameter at once
(1.84 GiB at 0.5B), on top of the bf16 gradients. With gradient checkpointing that step was the peak of the
whole training step (README, memory). This optimizer converts, clips and steps at most `chunk_elements` at a time
(or one parameter where a single one is larger), and frees each slice's fp32 gradients before the next.

It steps as ZeRO-1/2/3's fp32 partitions do, so a one-GPU run trains as a multi-GPU one (tests/test_loop.py):
the masters start from the bf16 weights, the gradient norm is taken in fp32 over all parameters before
clipping, a missing gradient counts as zero, and a non-finite norm skips the step (DeepSpeed's engine reads
`overflow` and holds the LR schedule). DeepSpeed's stage-0 wrapper differs in one more way: at start-up it
steps AdamW once with zero gradients, which applies weight decay once and puts Adam's step count one ahead.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 2**25  # fp32 gradients alive at once during a step: 128 MiB


class MasterWeightAdamW(torch.optim.Optimizer):
    """torch AdamW over fp32 masters of low-precision parameters; each step copies the masters back into them."""

    def __init__(self, params, max_grad_norm: float, chunk_elements: int = CHUNK_ELEMENTS, **adamw):
        self.weights = list(params)
        self.masters = [w.detach().to(torch.float32, copy=True) for w in self.weights]
        # DeepSpeed's wrappers keep the stepping torch optimizer as `.optimizer` (prefopt/portable.py reads it)
        self.optimizer = torch.optim.AdamW(self.masters, **adamw)
        super().__init__(self.masters, self.optimizer.defaults)
        # one set of groups and state: the LR schedule sets the lr the inner AdamW uses, checkpoints see its moments
        self.param_groups, self.state = self.optimizer.param_groups, self.optimizer.state
        self.max_grad_norm, self.overflow, self._global_grad_norm = max_grad_norm, False, None
        self.slices = _slices([w.numel() for w in self.weights], chunk_elements)

    def master_of(self) -> dict[int, torch.Tensor]:
        """id(weight) -> its fp32 master (prefopt/portable.py saves and restores the masters, not the weights)."""
        return {id(w): m for w, m in zip(self.weights, self.masters)}

    @torch.no_grad()
    def step(self, closure=None):
        """Clip by the global fp32 norm, then per slice: its fp32 gradients, AdamW on its masters, copy to weights.

        A slice's gradients go to fp32 in one flat buffer (one multi-tensor copy converts them all), are clipped
        with one multiply, and its masters step with AdamW's multi-tensor kernels (the fused one where the engine asks
        for it: on a GPU). A few launches a slice, never one per parameter.
        """
        present = [w.grad for w in self.weights if w.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(present, 2.0, dtype=torch.float32))) \
            if present else torch.zeros((), device=self.masters[0].device)
        self._global_grad_norm = norm
        self.overflow = not bool(torch.isfinite(norm))  # one host sync per step, as in DeepSpeed's wrapper
        if self.overflow:
            self.zero_grad()
            return None
        # DeepSpeed's clip: divide by (norm + 1e-6) / max_norm when that exceeds 1
        scale = (self.max_grad_norm / (norm + 1e-6)).clamp(max=1.0) if self.max_grad_norm > 0 else None
        for first, end in self.slices:
            weights, masters = self.weights[first:end], self.masters[first:end]
            flat = torch.empty(sum(m.numel() for m in masters), dtype=torch.float32, device=masters[0].device)
            grads = [view.view_as(m) for view, m in zip(flat.split([m.numel() for m in masters]), masters)]
            given = [(grad, w.grad) for grad, w in zip(grads, weights) if w.grad is not None]
            if len(given) < len(grads):  # a missing gradient counts as zero (as in ZeRO's partitions)
                flat.zero_()
            if given:
                torch._foreach_copy_(*map(list, zip(*given)))  # bf16 -> fp32, the whole slice at once
            if scale is not None:
                flat.mul_(scale)
            for master, grad in zip(masters, grads):
                master.grad = grad
            self.optimizer.step()  # steps only the masters holding a gradient: this slice
            for master in masters:
                master.grad = None
            torch._foreach_copy_(weights, masters)
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for weight in self.weights:
            weight.grad = None

    def state_dict(self) -> dict:
        return {"adamw": self.optimizer.state_dict(), "masters": [m.detach().clone() for m in self.masters]}

    def load_state_dict(self, state_dict: dict) -> None:
        if "fp32_groups" in state_dict:  # DeepSpeed's wrapper wrote it (prefopt's stage-0 bf16 runs until 2026-11-24)
            state_dict = {"adamw": state_dict["optimizer_state_dict"],
                          "masters": [m for group in state_dict["fp32_groups"] for m in group]}
        self.optimizer.load_state_dict(state_dict["adamw"])
        # torch's load replaces the inner optimizer's groups and state: share them again (the LR schedule sets
        # `lr` in self.param_groups)
        self.param_groups, self.state = self.optimizer.param_groups, self.optimizer.state
        with torch.no_grad():
            torch._foreach_copy_(self.masters, [m.to(self.masters[0].device) for m in state_dict["masters"]])
            torch._foreach_copy_(self.weights, self.masters)


def _slices(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive [first, end) index ranges of at most `budget` elements each (a larger parameter alone)."""
    slices, first, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > first and total + size > budget:
            slices.append((first, i))
            first, total = i, 0
        total += size
    if sizes:
        slices.append((first, len(sizes)))
    return slices
