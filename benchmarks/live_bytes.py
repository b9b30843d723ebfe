"""Peak tensor memory a training step adds beyond its model states, counted on any device (the CPU included).

`LiveBytes` is a TorchDispatchMode: every tensor storage an op creates under it is counted until it is freed, so
its peak is what the step's activations and temporaries hold at once. What existed before it started (weights,
optimizer states, fp32 master copies, a precomputed reference) is never counted, and gradients are subtracted
as they land in `.grad`: the figure is the one the GPU logs as `mem/rest_gib` (peak minus resident), measured
tensor by tensor instead of from the allocator, so a 2-core CPU machine can say where a GPU's memory would go.
Kernel workspaces that never become tensors (cuBLAS, flash attention) are not seen; neither is the allocator's
rounding. Imported by benchmarks/step_memory.py and benchmarks/trl_anchor.py (TRL's virtualenv): torch only.
"""

from __future__ import annotations

import collections
import re
import weakref

import torch
from torch.distributed._tools.mod_tracker import ModTracker
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Bytes of live storages created under the mode, less the gradients of `params`; peak, and its make-up."""

    def __init__(self, params=()):
        super().__init__()
        self.live: dict[int, tuple[int, str]] = {}  # storage -> (bytes, where it was made)
        self.grads: set[int] = set()  # storages now held as a parameter's .grad (model states, not counted)
        self.rest = self.peak = 0
        self.at_peak: dict[int, tuple[int, str]] = {}
        self.phases: dict[str, tuple[int, list[tuple[str, int]]]] = {}  # name -> (peak, breakdown) per mark()
        self.modules = ModTracker()
        self.hooks = [p.register_post_accumulate_grad_hook(self._grad_landed) for p in params if p.requires_grad]

    def __enter__(self):
        self.modules.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.modules.__exit__(*exc)
        for hook in self.hooks:
            hook.remove()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self._count(tensor.untyped_storage(), inputs, func)
        return out

    def _count(self, storage, inputs: set[int], func) -> None:
        key = storage._cdata
        if key in self.live or key in inputs or storage.nbytes() == 0:  # a view, an in-place op, or nothing new
            return
        self.live[key] = (storage.nbytes(), self._where(func))
        weakref.finalize(storage, self._freed, key)
        self.rest += storage.nbytes()
        if self.rest > self.peak:
            self.peak, self.at_peak = self.rest, dict(self.live)
            for grad in self.grads:
                self.at_peak.pop(grad, None)

    def _where(self, func) -> str:
        """'fw|bw  module.path.*  op': the innermost module running, layer numbers folded into '*'."""
        inner = max(self.modules.parents, key=len, default="")
        inner = re.sub(r"\.\d+(\.|$)", r".*\1", inner)
        return f"{'bw' if self.modules.is_bw else 'fw'}  {inner or '-'}  {func.__name__.split('.')[0]}"

    def _freed(self, key: int) -> None:
        nbytes, _ = self.live.pop(key)
        if key in self.grads:
            self.grads.discard(key)
        else:
            self.rest -= nbytes

    def _grad_landed(self, param) -> None:
        key = param.grad.untyped_storage()._cdata
        if key in self.live and key not in self.grads:
            self.grads.add(key)
            self.rest -= self.live[key][0]

    def mark(self, phase: str) -> None:
        """Close a phase (e.g. 'forward+backward'): keep its peak and make-up, and measure the next from here."""
        self.phases[phase] = (self.peak, self.breakdown())
        self.peak, self.at_peak = self.rest, {}

    def breakdown(self, top: int = 12) -> list[tuple[str, int]]:
        """The largest groups (phase, module, op) of what was live at the peak, in bytes, biggest first."""
        groups = collections.Counter()
        for nbytes, where in self.at_peak.values():
            groups[where] += nbytes
        return groups.most_common(top)
