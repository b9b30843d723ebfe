"""What a DPO step holds beyond model states, prefopt beside TRL, measured on the CPU (benchmarks/live_bytes.py).

Issue #11 asks that prefopt's peak memory without model states (activations and temporaries: `mem/rest_gib`) be
at most TRL's. A GPU measures it with the allocator; this measures the same quantity tensor by tensor, on any
machine, in bf16, for prefopt with its GPU code paths (each LM-head chunk recomputed in backward, the GPU's chunk
size) and for TRL 1.16's DPOTrainer on the anchor workload (it runs its own chunked log-prob head on the CPU too).
Each run trains 2 steps and measures the second, at two depths (DEPTHS), and extrapolates linearly to the full
depth of SIZE: activations grow by the same amount per layer, the head's share does not.

    TRL_PYTHON=/tmp/trlvenv/bin/python SIZE=0.5b DEPTHS="1 2" RUNS="prefopt:GC=0 trl:GC=0 prefopt:GC=1 trl:GC=1" \
        python benchmarks/step_memory.py

Not seen: attention's and cuBLAS's internal workspaces, the allocator's rounding and fragmentation; attention
runs SDPA per sequence here (flash-varlen on a GPU), TRL's padded rows SDPA with a mask. CPU autocast keeps some
ops in bf16 that CUDA's runs in fp32. Read the figures as where the memory goes and how the two compare, and
confirm on a GPU (`mem/rest_gib` in every GPU run's metrics). Env as benchmarks/dpo_throughput.py (PRECOMPUTE
defaults to 1, as in the README's rows), and CHUNK (prefopt's LM-head chunk, in tokens, instead of its rule).
Not a test: it asserts nothing.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from dpo_throughput import SIZES, build, write_recipe  # noqa: E402
from live_bytes import LiveBytes  # noqa: E402

GIB = 2**30


def report(meter: LiveBytes) -> str:
    """The `MEMORY {json}` line both systems print: each phase's peak and its largest parts, in GiB."""
    return "MEMORY " + json.dumps({phase: {"gib": peak / GIB, "top": [(where, n / GIB) for where, n in top]}
                                   for phase, (peak, top) in meter.phases.items()})


def prefopt_worker() -> None:
    """Two training steps of `prefopt dpo` in this process, bf16, GPU code paths; the second is measured."""
    import prefopt.logprobs as logprobs
    from prefopt.loop import Trainer
    from prefopt.objectives import OBJECTIVES
    from prefopt.recipe import load_recipe

    logprobs.recompute_logits = lambda feats: True  # what a GPU does: no fp32 logits kept for backward
    logprobs.chunk_size = functools.partial(logprobs.chunk_size, on_gpu=True)
    if os.environ.get("CHUNK"):  # another LM-head chunk size, in tokens, to see what it holds
        logprobs.chunk_size = lambda feats, vocab: int(os.environ["CHUNK"])
    work = Path(tempfile.mkdtemp(prefix="prefopt-memory-"))
    bs = int(os.environ.get("BS", 8))
    model_dir, data, _ = build(work, os.environ.get("SIZE", "0.5b"), int(os.environ.get("VOCAB", 151936)), bs * 2)
    recipe = write_recipe(work, model_dir, data, steps=2, bs=bs, extra_train=", precision: bf16")
    trainer = Trainer(load_recipe(recipe), OBJECTIVES["dpo"], resume=False)
    engine, run = trainer.context.engine, trainer.stepper.run
    for group in getattr(engine.optimizer, "optimizer", engine.optimizer).param_groups:
        group.update(fused=True, foreach=False)  # a GPU's fused AdamW (prefopt/engine.py): no per-tensor temporaries
    meter = LiveBytes(engine.module.parameters())

    def optimizer_step(step=engine.step):
        meter.mark("forward+backward")
        step()

    def measured(step: int, *args):
        if step != 1:  # the first step allocates the optimizer's states: model states, not measured
            return run(step, *args)
        engine.step = optimizer_step
        with meter:
            out = run(step, *args)
        meter.mark("optimizer step")
        return out

    trainer.stepper.run = measured
    trainer.train()
    print(report(meter), flush=True)


def measure(system: str, settings: dict, depth: int, trl_python: str) -> dict:
    """One worker process at `depth` layers; its phases."""
    env = {**os.environ, **settings, "LAYERS": str(depth), "MEMORY": "1", "STEP_MEMORY_WORKER": "1"}
    env.setdefault("PRECOMPUTE", "1")
    cmd = [trl_python, str(here / "trl_anchor.py")] if system == "trl" else [sys.executable, __file__]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[7:])
    raise SystemExit(f"{system} {settings} at {depth} layers failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def main() -> None:
    size = os.environ.get("SIZE", "0.5b")
    full = SIZES[size]["num_hidden_layers"]
    low, high = (int(d) for d in os.environ.get("DEPTHS", "1 2").split())
    trl_python = os.environ.get("TRL_PYTHON", "python3")
    print(f"{'run':<26}{'phase':<18}{f'{low} layers':>10}{f'{high} layers':>10}{'per layer':>11}"
          f"{f'{full} layers':>11}  (GiB beyond model states)")
    for spec in os.environ.get("RUNS", "prefopt:GC=0 trl:GC=0").split():
        system, _, pairs = spec.partition(":")
        settings = dict(pair.split("=") for pair in pairs.split(",") if pair)
        shallow, deep = (measure(system, settings, depth, trl_python) for depth in (low, high))
        for phase in deep:
            a, b = shallow[phase]["gib"], deep[phase]["gib"]
            per_layer = (b - a) / (high - low)
            print(f"{spec:<26}{phase:<18}{a:>10.2f}{b:>10.2f}{per_layer:>11.3f}{a + per_layer * (full - low):>11.2f}")
        for phase, got in deep.items():
            print(f"    largest at the {phase} peak, {high} layers: " +
                  "; ".join(f"{where} {gib:.2f}" for where, gib in got["top"][:6]))


if __name__ == "__main__":
    prefopt_worker() if os.environ.get("STEP_MEMORY_WORKER") == "1" else main()
