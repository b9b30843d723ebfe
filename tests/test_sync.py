"""No training step waits on the device: its forward, loss, metrics and backward never read a device value back to
the host (on a GPU each such read, `.item()`, `.tolist()`, `bool(t)`, stalls the step until the queue drains).

The CPU mirrors the GPU path: the same collator, the same packed attention (its CPU branch takes the same host
sizes), the same model and metrics code, and a batch's copy to the device makes new tensors, as on a GPU. Reads
show up as `aten::_local_scalar_dense` under a dispatch mode; `tolist` and `numpy` never reach the dispatcher on
the CPU, so they are counted by wrapping them. A read of a host value (the collator's tensors and what is computed
from them alone) costs nothing on a GPU and is not counted; neither is what runs on the host by design: the loader
and collator and the
optimizer's step (torch's AdamW reads its step count, a host tensor on every device; prefopt/masters.py reads the
overflow flag once, as DeepSpeed's engine needs it).
"""

import collections
import dataclasses
import traceback
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from prefopt.data.batch import Batch
from prefopt.loop import Trainer
from prefopt.metrics.preference import Meter
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from tests.conftest import tiny_dpo_recipe


class HostReads(TorchDispatchMode):
    """Host reads of device values while active: where (file:line of the innermost prefopt or transformers frame)
    and how often. Tensors in `host` (the collator's) and whatever is computed from them alone are host values,
    whose reads cost nothing on a GPU either; `paused` stops counting."""

    def __init__(self, host_tensors):
        super().__init__()
        self.host: dict[int, weakref.ref] = {}
        self.add_host(host_tensors)
        self.reads, self.paused = collections.Counter(), False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count(str(func), inputs[0])
        elif inputs and all(map(self.on_host, inputs)):  # computed from host values only: on the host
            self.add_host(t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
        return out

    def add_host(self, tensors) -> None:
        self.host.update((id(t), weakref.ref(t)) for t in tensors)

    def on_host(self, tensor) -> bool:
        ref = self.host.get(id(tensor))  # a weak reference: an id is only this tensor's while it lives
        return ref is not None and ref() is tensor

    def count(self, what: str, tensor) -> None:
        if not self.paused and not self.on_host(tensor):
            frames = [f for f in traceback.extract_stack() if "/prefopt/" in f.filename or "transformers" in f.filename]
            where = f"{frames[-1].filename.split('site-packages/')[-1]}:{frames[-1].lineno}" if frames else "?"
            self.reads[f"{what} at {where}"] += 1

    def __enter__(self):
        self.originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, self._wrap(name, original))
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, original)
        return super().__exit__(*exc)

    def _wrap(self, name, original):
        def read(tensor, *args, **kwargs):
            self.count(name, tensor)
            return original(tensor, *args, **kwargs)
        return read


    def copy_to_device(self, batch: Batch, device) -> Batch:
        """Batch.to as on a GPU: new tensors, device values (on the CPU `.to` hands back the host tensors)."""
        copies = {f.name: value.clone() for f in dataclasses.fields(batch) if torch.is_tensor(value := getattr(batch, f.name))}
        for copy in copies.values():
            self.host.pop(id(copy), None)
        return dataclasses.replace(batch, **copies)


@pytest.mark.parametrize("layout,objective,sets", [
    ("packed", "dpo", []),
    ("shared_prompt", "dpo", []),
    ("packed", "dpo", ["train.precompute_ref=false", "loss.sft_weight=1.0"]),  # the reference's forward too
    ("packed", "ipo", []),
    ("packed", "sft", ["data.train=builtin:arith/sft/train/64", "data.eval=null"]),
])
def test_a_training_step_reads_nothing_back_from_the_device(tmp_path, monkeypatch, layout, objective, sets):
    """Two steps, the second a logging step (entropy, the gradient norm and every metric added to the meter):
    no host read between the batch's copy to the device and the optimizer. The check counts (it found the
    packed-row scan transformers ran in every forward, and the per-sequence split's `cu.tolist()`)."""
    recipe = load_recipe(tiny_dpo_recipe(tmp_path), [f"train.output_dir={tmp_path / 'run'}", f"train.layout={layout}",
                                                     "log.grad_split_every=0", *sets])
    trainer = Trainer(recipe, OBJECTIVES[objective], resume=False)
    stepper, engine = trainer.stepper, trainer.context.engine
    stepper.start(None)
    batches = [next(stepper.batches) for _ in range(2)]  # the loader and collator work on the host
    assert {batch.layout for step in batches for batch in step} == {layout if objective != "sft" else "packed"}
    stepper.batches = iter(batches)
    host = [value for step in batches for batch in step for value in vars(batch).values() if torch.is_tensor(value)]
    reads, optimizer_step = HostReads(host), engine.step
    monkeypatch.setattr(Batch, "to", lambda batch, device: reads.copy_to_device(batch, device))

    def step_unwatched(*args, **kwargs):
        reads.paused = True
        try:
            return optimizer_step(*args, **kwargs)
        finally:
            reads.paused = False

    engine.step = step_unwatched
    meter = Meter()
    with reads:
        for step, log_now in enumerate((False, True)):
            stepper.run(step, meter, log_now)
    assert not reads.reads, dict(reads.reads)
    metrics = meter.reduce({})  # read here, once, as the loop's logging step does
    assert "loss" in metrics and all(value == value for value in metrics.values()), metrics
