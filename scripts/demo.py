"""The on-policy loop on the embedded arithmetic task, end to end on CPU, in one process (what `make demo` runs).

  1. the SFT base, builtin:arith-base (built once, on one thread: about 3.5 minutes, then cached), answers the
     held-out test problems greedily;
  2. it samples 4 candidates for each of 1,500 training problems, and the rule judge keeps best/worst pairs (and
     each problem's best answer, when it is right);
  3. on those pairs, six passes each (recipes/demo/onpolicy.yaml): vanilla DPO (the paper's 3D-properties, and what
     they cost) and DPO + SFT (the paper's remedy, Eq. 7, λ 8);
  4. GRPO with the rule reward (recipes/demo/grpo.yaml): 100 updates of 256 problems × 2 responses;
  5. every model answers the same held-out problems; the 3D metrics of DPO, DPO + SFT and GRPO are on the same
     128 pairs (the judge's first), against the same base.
Every step is a prefopt command run through the Python API (`prefopt.generate`, `judge`, `train`: the CLI's code),
and is printed as the command line it equals. CPU arithmetic is pinned (prefopt/cpu_pin.py), so the table is the same
on another x86-64 CPU, and whatever the threads (with GRPO on one core beside the DPO steps on the other it came out
identical, and no sooner). Settings were chosen on the validation split (README, "The demo").
DEMO_QUICK=1 runs the same steps at toy sizes (CI); the output goes to runs/demo/.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import prefopt
from prefopt import cpu_pin
from prefopt.rundir import read_metrics

QUICK = os.environ.get("DEMO_QUICK") == "1"
ROOT = Path("runs/demo")
BASE = "builtin:arith-base/0/40" if QUICK else "builtin:arith-base"
TEST = "builtin:arith/prompts/test/40" if QUICK else "builtin:arith/prompts/test/all"  # every test problem, once
PROMPTS = "builtin:arith/prompts/train/48/0" if QUICK else "builtin:arith/prompts/train/1500/0"
SMALL = ["generate.n=8", "generate.max_new_tokens=16", "train.micro_batch_size=4"] if QUICK else []
# Dispersion, probed as in the GRPO recipe; evaluations on the pairs often enough to draw the 3D curves
PROBE = ["eval.probe_size=8", "eval.probe_max_new_tokens=16", "eval.every=10"]
THREE_D_PAIRS = 128  # every run's 3D metrics on the same pairs (eval.max_batches counts batches, and they differ)
GRPO = ["train.max_steps=2", "grpo.rollout_prompts=8", "train.micro_batch_size=16", "grpo.max_new_tokens=12",
        "data.eval=null"] if QUICK else []


run = prefopt.run


def accuracy(model: str, name: str) -> dict:
    """Shares of 5-point and 4-5-point greedy answers to the held-out problems (rule judge)."""
    return prefopt.accuracy(model, TEST, ROOT / name, "recipes/demo/eval_generate.yaml", "recipes/demo/eval_judge.yaml")


def main() -> None:
    start = time.time()
    cpu_pin.pin()  # before torch starts: the table is then the same on every x86-64 CPU with AVX2 (prefopt/cpu_pin.py)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI does the same; here the steps run through the Python API
    evals = {"SFT base": accuracy(BASE, "eval_base")}
    gens = run("generate", "recipes/demo/onpolicy.yaml", f"model.path={BASE}", f"data.train={PROMPTS}",
               f"train.output_dir={ROOT / 'generate'}", *SMALL)
    counts = run("judge", "recipes/demo/onpolicy.yaml", f"judge.input={gens}", f"train.output_dir={ROOT / 'judge'}")
    pairs = ROOT / "judge" / "pairs.jsonl"
    eval_pairs = ROOT / "eval_pairs.jsonl"
    eval_pairs.write_text("".join(pairs.read_text().splitlines(keepends=True)[:THREE_D_PAIRS]))
    for name, ablation in (("dpo", ["loss.sft_weight=0"]), ("dpo_sft", [])):  # the recipe is DPO + SFT
        run("dpo", "recipes/demo/onpolicy.yaml", f"model.path={BASE}", f"data.train={pairs}", f"data.eval={eval_pairs}",
            *ablation, f"train.output_dir={ROOT / name}", *PROBE, *SMALL[2:])
    run("grpo", "recipes/demo/grpo.yaml", f"model.path={BASE}", f"data.eval={eval_pairs}", "eval.every=10",
        f"train.output_dir={ROOT / 'grpo'}", *GRPO)
    from demo_report import RUNS, report

    for name, run_dir in RUNS.items():
        evals[name] = accuracy(str(ROOT / run_dir / "model"), f"eval_{run_dir}")
    runs = {name: ROOT / run_dir for name, run_dir in RUNS.items()}
    report(ROOT, evals, {name: read_metrics(path) for name, path in runs.items()}, counts, time.time() - start)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
