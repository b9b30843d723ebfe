"""GRPO against its control from a converged base: what RL with the verifiable reward adds once more SFT cannot.

`python -m prefopt.experiments.converged --seeds 0 1 2` (what scripts/converged.sh runs) writes docs/converged.md.
docs/paper.md's bases are the 1,700-step SFT model the demo can afford, and continued SFT on their own right
answers (the control) improves them as much as any alignment run. Is that because the base is unfinished? Per seed:
  1. held-out accuracy of the shipped base (`builtin:arith-base/0`) and of the same SFT run for 6,000 steps
     (`builtin:arith-base/0/6000`), whose training loss has levelled off; every seed starts from seed 0's bases
     (a 6,000-step build takes about 13 minutes on a free core) and draws its own problems, rollouts and data order;
  2. from the converged base, GRPO with the rule reward (recipes/demo/grpo.yaml as the demo runs it, 100 updates),
     the same at 64 problems × 8 answers an update, and their control: continued SFT on the judged-best of 4
     answers to the same problems for as many steps (recipes/demo/rft.yaml), all logging validation accuracy;
  3. held-out accuracy of both (one greedy answer per test problem, rule judge; docs/paper.md's evaluation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prefopt.experiments import paper_selected
from prefopt.experiments.paper import Seed, Settings
from prefopt.experiments.seeds import command_line
from prefopt.fsutil import write_atomic
from prefopt.rundir import read_metrics

VALID = ["eval.prompts=builtin:arith/prompts/valid/1000/5", "eval.max_prompts=1000", "eval.max_new_tokens=40"]


@dataclass(frozen=True)
class Sizes:
    """The experiment's sizes (printed on the page)."""

    base_steps: int = 6000  # the SFT length whose training loss has levelled off (docs/converged.md shows it)
    base_seed: int | None = 0  # every seed starts from this seed's base (None: each its own; ~13 minutes a build)
    eval_problems: int | None = None  # None: every test problem once (paper_report.held_out_set)
    problems: int = 12800  # GRPO's training problems; the control's 4 candidates are drawn for all of them
    steps: int = 100
    rollout_prompts: int = 256  # × group_size answers an update: recipes/demo/grpo.yaml's shape, not re-selected
    group_size: int = 2
    wide: tuple = (64, 8)  # a second GRPO run: fewer problems, more answers each, so more groups that differ
    eval_every: int = 25


QUICK = Sizes(base_steps=40, eval_problems=16, problems=16, steps=2, rollout_prompts=4, group_size=2, wide=(2, 4),
              eval_every=1)
QUICK_SETS = ["train.micro_batch_size=8", "grpo.max_new_tokens=12", "eval.max_prompts=4", "eval.max_new_tokens=8"]


def run_seed(seed: int, root: Path, sizes: Sizes, quick: bool) -> dict:
    """One seed's runs (in its own process); its summary, also written to <root>/seed<N>/summary.json."""
    here = Seed(seed, root, Settings(eval_problems=sizes.eval_problems), quick)
    base_seed = seed if sizes.base_seed is None else sizes.base_seed
    shipped = f"builtin:arith-base/{base_seed}" + ("/30" if quick else "")  # quick: the paper's quick base
    here.base = f"builtin:arith-base/{base_seed}/{sizes.base_steps}"
    valid = [*VALID, f"eval.every={sizes.eval_every}", *(QUICK_SETS if quick else [])]
    summary = {"seed": seed, "shipped": here.accuracy(shipped, "eval_shipped"),
               "base": here.accuracy(here.base, "eval_base")}
    problems = f"builtin:arith/prompts/train/{sizes.problems}/{7 + seed}"
    for name, (prompts, group) in (("grpo", (sizes.rollout_prompts, sizes.group_size)), ("grpo_wide", sizes.wide)):
        rows = here.train("grpo", "recipes/demo/grpo.yaml", name, problems, "null", sizes.steps, *valid,
                          f"grpo.rollout_prompts={prompts}", f"grpo.group_size={group}")
        summary[name] = {**here.accuracy(here.dir / name / "model", f"eval_{name}"), **curves(rows)}
    _, best = paper_selected.candidates(here, "grpo_control", problems, sizes.problems, quick)
    answers = paper_selected.count_rows(best)
    rows = here.train("sft", "recipes/demo/rft.yaml", "rft_grpo", best, "null", sizes.steps, *valid,
                      paper_selected.one_pass(answers, sizes.steps))
    summary["rft_grpo"] = {**here.accuracy(here.dir / "rft_grpo" / "model", "eval_rft_grpo"), **curves(rows)}
    summary["base_loss"] = base_loss(here.base)
    write_atomic(here.dir / "summary.json", json.dumps(summary, indent=1))
    return summary


def curves(rows: list[dict]) -> dict:
    """Validation accuracy over steps; for GRPO the share of its groups that carried no signal and its rollouts'
    accuracy; for DPO the 3D metrics on its training batches (log-prob change of chosen and rejected)."""
    names = {"valid": "eval/accuracy", "zero_std": "grpo/zero_std_frac", "train_accuracy": "grpo/accuracy",
             "delta_chosen": "3d/delta_chosen", "delta_rejected": "3d/delta_rejected"}
    found = paper_selected.curves(rows, names.values())
    return {name: found[key] for name, key in names.items()}


def base_loss(spec: str) -> list:
    """The base's SFT training loss over steps, from its cached run (prefopt/tasks/bases.py)."""
    from prefopt import builtin

    run = Path(builtin.resolve(spec)).parent
    return [[row["step"], row["loss"]] for row in read_metrics(run) if "loss" in row]


def main(argv=None) -> None:
    from prefopt.experiments import converged_page

    command_line(__doc__.splitlines()[0], run_seed, Sizes(), QUICK, "runs/converged", converged_page.write, argv)


if __name__ == "__main__":
    main()
