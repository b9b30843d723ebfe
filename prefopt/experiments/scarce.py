"""GRPO and on-policy DPO + SFT against their controls from a base whose SFT data was scarce.

`python -m prefopt.experiments.scarce --seeds 0 1 2` (what scripts/scarce.sh runs) writes docs/scarce.md.
docs/converged.md found that once a base has learnt the task, RL has almost nothing left to learn from (its
rollouts are right 99 % of the time); docs/paper.md's base has headroom but is unfinished SFT, so continued SFT
(the control) improves it as much as anything. The common real case is between: SFT data is scarce and has been
fitted, prompts with a verifiable answer are plentiful. Per seed, each with its own base:
  1. the base: the shipped SFT recipe on 2,000 problem draws for 3,000 steps (`builtin:arith-base/SEED/3000/2000`;
     its training loss per token ends below 0.01: it has fitted its data), and the shipped base for reference;
  2. 4 candidates from the base for each of 12,800 training problems, judged by the rule: pairs (best against
     worst, where they differ) and each problem's best right answer;
  3. GRPO with the rule reward (recipes/demo/grpo.yaml at 64 problems × 8 answers an update, 100 updates) and its
     control, continued SFT on the best answers for as many steps (recipes/demo/rft.yaml, one pass over them);
  4. DPO + SFT over the pairs (recipes/demo/onpolicy.yaml: 3 passes, β 0.1, λ 2) and its control, continued SFT
     on the best answers for as many steps at the same batch size (docs/paper.md's selected-settings control);
  5. a longer control: GRPO's control for 3 passes over the best answers (3× its steps), since a control held to
     another run's step count may just be short of where more SFT on the same answers leads;
  6. the control first, then GRPO from its model (the same GRPO settings), against the longer control: together
     they take fewer steps (2× GRPO's) than the longer control; and the same GRPO for as many steps in all as the
     longer control (`equal_steps`);
  7. the control first, then DPO + SFT from its model on pairs of 4 candidates it wrote for the same problems
     (docs/paper.md's after-control lr), against the longer control;
  8. GRPO with an SFT term on its right answers (recipes/demo/grpo_sft.yaml, λ 1) against GRPO's control: the RL
     method that learns from both signals DPO + SFT has (`with_sft_term`, added after the page's first runs);
  9. docs/paper.md's runs at 1,024 problems an update (`wider`, added later): GRPO + SFT term, the control on the
     best of 4 base answers to the same 51,200 problems, DPO + SFT on those answers' pairs; then that control and
     GRPO + SFT term, each for the longer control's 3× the steps;
 10. held-out accuracy of all (one greedy answer per test problem, rule judge), validation accuracy every 25 steps.
The GRPO shape (64 × 8 over the demo's 256 × 2) and DPO + SFT's 3 passes (over 1) were chosen on validation
accuracy from a separate seed-0 base of the same recipe, before this harness ran, and so was 7's learning rate
(3e-5 over 1e-4) from that base's control; docs/scarce.md lists them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prefopt.experiments import paper_selected
from prefopt.experiments.converged import QUICK_SETS, VALID, base_loss, curves
from prefopt.experiments.paper import Seed, Settings
from prefopt.experiments.seeds import command_line
from prefopt.fsutil import write_atomic


@dataclass(frozen=True)
class Sizes:
    """The experiment's sizes (printed on the page)."""

    base_steps: int = 3000  # the SFT's training loss has levelled off on its 2,000 problems by then
    base_problems: int = 2000
    eval_problems: int | None = None  # None: every test problem once (paper_report.held_out_set)
    problems: int = 12800  # RL and candidate problems: 6× more than the SFT saw, as prompts are cheap and labels not
    steps: int = 100  # GRPO's updates and its control's steps
    rollout_prompts: int = 64  # × group_size answers an update (chosen over 256 × 2 on a separate base, validation)
    group_size: int = 8
    eval_every: int = 25
    long_passes: int = 3  # the longer control's passes over the best answers (one pass is GRPO's control)

    def grpo_shape(self) -> list[str]:
        """The recipe sets for every GRPO run of the page: its problems and answers an update."""
        return [f"grpo.rollout_prompts={self.rollout_prompts}", f"grpo.group_size={self.group_size}"]


QUICK = Sizes(base_steps=40, base_problems=64, eval_problems=16, problems=64, steps=2, rollout_prompts=2,
              group_size=4, eval_every=1, long_passes=2)


# `wider`'s problems: 4 × the page's, 51,200 (docs/paper.md's size: 100 updates of 1,024 problems draw each twice)
WIDE = 4

# the DPO + SFT settings this page ran (chosen before it, see the docstring); the demo's recipe was chosen again since
DPO_SFT = ["loss.sft_weight=2.0", "train.epochs=3"]


def run_seed(seed: int, root: Path, sizes: Sizes, quick: bool) -> dict:
    """One seed's runs (in its own process); its summary, also written to <root>/seed<N>/summary.json."""
    here = Seed(seed, root, Settings(eval_problems=sizes.eval_problems), quick)
    shipped = f"builtin:arith-base/{seed}" + ("/30" if quick else "")  # quick: the paper's quick base
    here.base = f"builtin:arith-base/{seed}/{sizes.base_steps}/{sizes.base_problems}"
    valid = [*VALID, f"eval.every={sizes.eval_every}", *(QUICK_SETS if quick else [])]
    toy = paper_selected.TOY_TRAIN if quick else []
    summary = {"seed": seed, "shipped": here.accuracy(shipped, "eval_shipped"),
               "base": here.accuracy(here.base, "eval_base"), "base_loss": base_loss(here.base)}
    problems = f"builtin:arith/prompts/train/{sizes.problems}/{7 + seed}"
    pairs, best = paper_selected.candidates(here, "candidates", problems, sizes.problems, quick)
    answers = paper_selected.count_rows(best)
    summary["candidates"] = {"pairs": paper_selected.count_rows(pairs), "best": answers, "problems": sizes.problems}
    one_pass = paper_selected.one_pass(answers, sizes.steps)  # GRPO's control: one pass in its steps

    run = lambda name, *args: train(here, summary, valid, name, *args)
    run("grpo", "grpo", "recipes/demo/grpo.yaml", problems, sizes.steps, *sizes.grpo_shape())
    run("rft_grpo", "sft", "recipes/demo/rft.yaml", best, sizes.steps, one_pass)
    steps = run("dpo_sft", "dpo", "recipes/demo/onpolicy.yaml", pairs, 0, *DPO_SFT, *toy)  # 0: the passes decide
    run("rft", "sft", "recipes/demo/rft.yaml", best, steps, *toy)
    run("rft_long", "sft", "recipes/demo/rft.yaml", best, sizes.long_passes * sizes.steps, one_pass)
    # the usual order, SFT on verified answers and then RL: GRPO from the control's model, as GRPO above
    control = here.dir / "rft_grpo" / "model"
    run("rft_then_grpo", "grpo", "recipes/demo/grpo.yaml", problems, sizes.steps, f"model.path={control}",
        *sizes.grpo_shape())
    equal_steps(here, summary, sizes, valid, problems)
    with_sft_term(here, summary, sizes, valid, problems)
    wider(here, summary, sizes, valid, quick)
    # the same order for the DPO family: pairs on-policy for the control's model, DPO + SFT from it
    pairs, _ = paper_selected.candidates(here, "rft_candidates", problems, sizes.problems, quick, model=control)
    summary["rft_candidates"] = {"pairs": paper_selected.count_rows(pairs)}
    run("rft_then_dpo_sft", "dpo", "recipes/demo/onpolicy.yaml", pairs, 0, f"model.path={control}",
        *paper_selected.AFTER_CONTROL_DPO, *toy)
    write_atomic(here.dir / "summary.json", json.dumps(summary, indent=1))
    return summary


def train(here: Seed, summary: dict, valid: list[str], name: str, command: str, recipe: str, data: Path | str,
          steps: int, *sets: str) -> int:
    """One run from the seed's base (or the model its sets name), evaluated on validation during training and on
    the test split after it, into summary[name]; its last step."""
    rows = here.train(command, recipe, name, data, "null", steps, *valid, *sets)
    summary[name] = {**here.accuracy(here.dir / name / "model", f"eval_{name}"), **curves(rows)}
    return max(row["step"] for row in rows)


def equal_steps(here: Seed, summary: dict, sizes: Sizes, valid: list[str], problems: str) -> None:
    """GRPO from the one-pass control's model for as many steps in all as the longer control: held to 2× GRPO's
    steps against the longer control's 3×, GRPO after the control was still rising on validation where the longer
    control had levelled off, so its shortfall may be the steps, not the method."""
    control = here.dir / "rft_grpo" / "model"
    train(here, summary, valid, "rft_then_grpo_equal", "grpo", "recipes/demo/grpo.yaml", problems,
          (sizes.long_passes - 1) * sizes.steps, f"model.path={control}", *sizes.grpo_shape())


def with_sft_term(here: Seed, summary: dict, sizes: Sizes, valid: list[str], problems: str) -> None:
    """GRPO with an SFT term on its right answers (recipes/demo/grpo_sft.yaml's λ 1) at this page's GRPO shape,
    against the same control: the RL analogue of DPO + SFT, which beats that control here at equal steps."""
    train(here, summary, valid, "grpo_sft", "grpo", "recipes/demo/grpo_sft.yaml", problems, sizes.steps,
          *sizes.grpo_shape())


def wider(here: Seed, summary: dict, sizes: Sizes, valid: list[str], quick: bool) -> None:
    """docs/paper.md's selected runs at 1,024 problems × 2 an update from this page's base: GRPO + SFT term
    (recipes/demo/grpo_1024_sft.yaml), its control (SFT at lr 8e-4 on the best of 4 base answers to the same
    problems, one pass in as many steps) and DPO + SFT on those answers' pairs (recipes/demo/onpolicy_1024.yaml);
    then the control and GRPO + SFT term for the longer control's steps. On paper.md's unfinished base the control
    matched both; this base has fitted its SFT data."""
    count = WIDE * sizes.problems  # GRPO samples each twice, 2 answers a time: the control's 4 answers to each
    problems = f"builtin:arith/prompts/train/{count}/{7 + here.seed}"
    pairs, best = paper_selected.candidates(here, "candidates_1024", problems, count, quick)
    answers, compared = paper_selected.count_rows(best), paper_selected.count_rows(pairs)
    summary["candidates_1024"] = {"pairs": compared, "best": answers, "problems": count}
    run = lambda name, *args: train(here, summary, valid, name, *args)
    grpo_sets = paper_selected.WIDE_QUICK if quick else []
    run("grpo_1024_sft", "grpo", "recipes/demo/grpo_1024_sft.yaml", problems, sizes.steps, *grpo_sets)
    run("rft_1024", "sft", "recipes/demo/rft.yaml", best, sizes.steps, paper_selected.one_pass(answers, sizes.steps),
        *paper_selected.WIDE_CONTROL)
    run("dpo_sft_1024", "dpo", "recipes/demo/onpolicy_1024.yaml", pairs, sizes.steps,
        paper_selected.one_pass(compared, sizes.steps))
    # the control given the longer control's passes over the same answers, and GRPO + SFT term for as many updates
    # on the same problems: whether a win at equal steps survives more steps for both
    longer = sizes.long_passes * sizes.steps
    run("rft_1024_long", "sft", "recipes/demo/rft.yaml", best, longer, paper_selected.one_pass(answers, sizes.steps),
        *paper_selected.WIDE_CONTROL)
    run("grpo_1024_sft_long", "grpo", "recipes/demo/grpo_1024_sft.yaml", problems, longer, *grpo_sets)


def main(argv=None) -> None:
    from prefopt.experiments import scarce_page

    command_line(__doc__.splitlines()[0], run_seed, Sizes(), QUICK, "runs/scarce", scarce_page.write, argv)


if __name__ == "__main__":
    main()
