"""SFT bases for the embedded task, built once and cached: `builtin:arith-base` and `builtin:arith-weak`.

`arith-base` is the model the demo and docs/paper.md align: a 128-wide, 4-layer Llama after 1,700 SFT steps on
20,000 problems answers about 30 % of the held-out ones, near the range the paper's bases sit (32-53 %), so
best-of-8 and worst-of-8 differ on most prompts. It is unfinished on purpose (a base the demo can build in minutes,
with room to improve): the same SFT for 6,000 steps (`builtin:arith-base/SEED/6000`) learns the task's arithmetic
and answers about 94 % (docs/converged.md). With fewer SFT problems (`builtin:arith-base/SEED/3000/2000`: 2,000
draws) the SFT fits its data and stops short of the arithmetic: the "scarce SFT" base of docs/scarce.md.
`arith-weak` is smaller and answers few: the paper's "another model" (Qwen-7B beside Baichuan2-33B) for rejected
responses in scenarios 3 and 4.

Spec: `builtin:arith-base[/SEED[/STEPS[/PROBLEMS]]]`. The build runs `prefopt sft` in a child process (a world of
one, even when the caller is one rank of many) on the recipe below, under a lock, into
`$PREFOPT_CACHE/<name>-s<SEED>-n<STEPS>[-p<PROBLEMS>]-<key>/`. The key hashes the recipe and the sources that
make the data and the tokenizer, as the reference cache does, and the pinned CPU arithmetic (prefopt/cpu_pin.py), so
a change to any of them builds a new base.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from prefopt import cpu_pin, tiny, toy
from prefopt.cache import generators_key
from prefopt.engine import env_for_child
from prefopt.errors import UserError
from prefopt.fsutil import locked
from prefopt.tasks import arith
from prefopt.tiny import build_tiny

GENERATORS = (tiny, toy, arith)  # what makes the builtins: their sources key the cache (prefopt/cache.py)

# name -> model shape and SFT length; the SFT data is 20,000 training problems for both unless the spec names a count.
SHAPES = {
    "arith-base": {"hidden": 128, "layers": 4, "steps": 1700, "lr": 2.0e-3},
    "arith-weak": {"hidden": 64, "layers": 2, "steps": 800, "lr": 3.0e-3},
}
SFT_PROBLEMS = 20000
RECIPE = """\
# The SFT recipe of builtin:{name} (prefopt/tasks/bases.py); seed {seed}.
model: {{path: "{init}"}}
data: {{train: "builtin:arith/sft/train/{problems}/{seed}", max_length: 64, max_prompt_length: 24}}
optim: {{lr: {lr}, warmup_steps: 20, schedule: cosine, min_lr_ratio: 0.1}}
train: {{max_steps: {steps}, micro_batch_size: 32, seed: {seed}, output_dir: "{out}"}}
log: {{every: 100, console: true}}
eval: {{every: 0, probe_size: 0}}
"""


def parse(name: str, rest: list[str]) -> tuple[int, int, int]:
    """(seed, steps, problems) from the parts after the name; defaults 0, the shape's SFT length, SFT_PROBLEMS."""
    try:
        values = [int(part) for part in rest]
    except ValueError:
        values = []
    if len(rest) > 3 or len(values) != len(rest) or any(v < 0 for v in values) or 0 in values[1:]:
        raise UserError(f"builtin:{'/'.join([name, *rest])}: expected builtin:{name}[/SEED[/STEPS[/PROBLEMS]]] "
                        "(non-negative integers, STEPS and PROBLEMS > 0)")
    seed, steps, problems = values + [0, SHAPES[name]["steps"], SFT_PROBLEMS][len(values):]
    return seed, steps, problems


def recipe_text(name: str, seed: int, steps: int, problems: int, init: str, out: str) -> str:
    """The SFT recipe that builds this base."""
    shape = SHAPES[name]
    return RECIPE.format(name=name, seed=seed, steps=steps, lr=shape["lr"], problems=problems, init=init, out=out)


def cache_key(name: str, seed: int, steps: int, problems: int = SFT_PROBLEMS) -> str:
    """Hash of the recipe, the shape, what makes the task data and the tokenizer (cache.generators_key) and the
    pinned CPU arithmetic of the build."""
    blob = [recipe_text(name, seed, steps, problems, "", ""), SHAPES[name], generators_key(GENERATORS), cpu_pin.PINNED]
    return hashlib.sha256(repr(blob).encode()).hexdigest()[:16]


def resolve(name: str, rest: list[str], cache: Path) -> str:
    """The model directory of the base (building it first if the cache has none)."""
    seed, steps, problems = parse(name, rest)
    count = "" if problems == SFT_PROBLEMS else f"-p{problems}"  # the shipped bases keep their directory names
    home = cache / f"{name}-s{seed}-n{steps}{count}-{cache_key(name, seed, steps, problems)}"
    model = home / "sft" / "model"
    if (model / "config.json").exists():
        return str(model)
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache / f".{home.name}.lock"):  # ranks and parallel jobs wait for one builder
        if not (model / "config.json").exists():
            _build(name, seed, steps, problems, home)
    return str(model)


def _build(name: str, seed: int, steps: int, problems: int, home: Path) -> None:
    shape = SHAPES[name]
    work = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=home.parent))
    build_tiny(work / "init", arith.corpus(), hidden=shape["hidden"], layers=shape["layers"], seed=seed)
    recipe = work / "recipe.yaml"
    recipe.write_text(recipe_text(name, seed, steps, problems, str(work / "init"), str(work / "sft")))
    print(f"builtin:{name}: building the SFT base once ({shape['hidden']} wide, {shape['layers']} layers, "
          f"{steps} steps on {problems:,} problems, seed {seed}); cached at {home}", file=sys.stderr, flush=True)
    # One thread and pinned CPU arithmetic (prefopt/cpu_pin.py), so that a base is the same whatever the machine's
    # cores and processor: sums taken in another order give another model (seed 0 built with 2 threads and with 1
    # differed by up to 0.39 in a weight; on two machines it answered 54.5 and 18.8 % of the test problems).
    env = {**env_for_child(), **cpu_pin.PINNED, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "prefopt.cli", "sft", "--recipe", str(recipe)],
                          env=env, stdout=sys.stderr, stderr=sys.stderr)
    if done.returncode:
        raise UserError(f"builtin:{name}: the SFT build failed (exit {done.returncode}); its files are in {work}")
    shutil.rmtree(work / "init")
    recipe.write_text(recipe_text(name, seed, steps, problems, "(a fresh model from prefopt.tiny.build_tiny)",
                                  str(home / "sft")))
    os.replace(work, home)
