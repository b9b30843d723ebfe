"""What prefopt's diagnostics cost per training step: entropy (logging steps), the dispersion probe (logging steps)
and the gradient split (every `log.grad_split_every` steps), against a plain step, on the anchor-shaped workload.

    SIZE=small VOCAB=32000 BS=8 STEPS=6 python benchmarks/dpo_throughput.py   # the throughput figure
    SIZE=small VOCAB=32000 BS=8 REPS=3 python benchmarks/diagnostics_cost.py  # this breakdown

It times each kind of step in-process on one fixed batch (the median of REPS) and prints one `RESULT {json}` line
with the seconds of each and their share of a step at the defaults (`log.every: 10`, probe of 16 prompts, grad
split off; the share with `log.grad_split_every: 10` too). Not a test: it asserts nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dpo_throughput import build  # noqa: E402


def main() -> None:
    import torch

    from prefopt import probe
    from prefopt.loop import Trainer
    from prefopt.metrics.preference import Meter
    from prefopt.objectives import OBJECTIVES
    from prefopt.recipe import load_recipe

    size, bs, reps = os.environ.get("SIZE", "small"), int(os.environ.get("BS", 8)), int(os.environ.get("REPS", 3))
    work = Path(tempfile.mkdtemp(prefix="prefopt-diag-"))
    model_dir, data, _ = build(work, size, int(os.environ.get("VOCAB", 32000)), bs * (4 * reps + 4))
    recipe_path = work / "r.yaml"
    recipe_path.write_text(f"""model: {{path: {model_dir}}}
data: {{train: {data}, eval: {data}, max_length: 1024, max_prompt_length: 512, shuffle: false}}
optim: {{lr: 1.0e-6, schedule: constant}}
train: {{max_steps: {4 * reps + 2}, micro_batch_size: {bs}, precompute_ref: true, ref_cache_dir: {work / 'ref'},
         output_dir: {work / 'run'}}}
log: {{every: 10, grad_split_every: 1, console: false}}
eval: {{probe_size: 16, probe_max_new_tokens: 32}}
""")
    trainer = Trainer(load_recipe(recipe_path), OBJECTIVES["dpo"], resume=False)
    step = trainer.stepper
    step.start(None)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    every = trainer.recipe.log.grad_split_every
    runs = {"plain": [], "entropy": [], "grad_split": [], "probe": []}
    step.run(0, Meter(), False)  # warm-up
    # Every timed step trains on the same micro-batches: the anchor's pairs differ in length by up to 3x, so
    # consecutive batches would differ by more than the diagnostics cost.
    step.batches = itertools.repeat(next(step.batches))
    for _ in range(reps):
        trainer.recipe.log.grad_split_every = 0
        runs["plain"].append(timed(lambda: step.run(1, Meter(), False)))
        runs["entropy"].append(timed(lambda: step.run(1, Meter(), True)) - runs["plain"][-1])
        trainer.recipe.log.grad_split_every = every
        runs["grad_split"].append(timed(lambda: step.run(every - 1, Meter(), False)) - runs["plain"][-1])
        runs["probe"].append(timed(lambda: probe.unseen_logp(trainer.context.engine.module, trainer.evaluation.probe_set,
                                                             trainer.context.tokenizer.pad_token_id, bs)))
    s = {k: statistics.median(v) for k, v in runs.items()}
    per_step_default = (s["entropy"] + s["probe"]) / 10  # both run on logging steps, every 10 by default
    out = dict(size=size, bs=bs, reps=reps, device="cuda" if torch.cuda.is_available() else "cpu",
               seconds={k: round(v, 3) for k, v in s.items()},
               share_at_defaults=round(per_step_default / s["plain"], 4),
               share_with_grad_split_every_10=round((per_step_default + s["grad_split"] / 10) / s["plain"], 4))
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
