"""The "selected settings" half of docs/paper.md: what it takes to improve the base, per seed, beside its control.

Settings come from the validation search (scripts/select.sh, docs/selection.md); every number here is on the test
split. Per seed, from the same base as the paper-settings runs:
  - 4 candidates for each of 1,500 training problems, judged into pairs; DPO + SFT over them (recipes/demo/onpolicy.yaml:
    its passes and λ) and, for as many steps, the control: continued SFT on the same problems' judged-best answers
    (recipes/demo/rft.yaml);
  - GRPO with the rule reward (recipes/demo/grpo.yaml), the same with an SFT term on its right answers
    (recipes/demo/grpo_sft.yaml) and, for as many steps and 4 samples per problem as GRPO draws, continued SFT on
    the judged-best of the 4 answers to GRPO's problems (the RL path's control); and GRPO at 4× the problems an
    update (recipes/demo/grpo_1024.yaml), with and without the SFT term (grpo_1024_sft.yaml), beside its own
    control at that size, and DPO + SFT on the pairs of that control's candidates (onpolicy_1024.yaml);
  - the control first, then each family from the control's model (docs/scarce.md: the control learns from every
    problem's right answer, GRPO from the few whose answers differ, so the usual order is SFT on verified answers,
    then RL): GRPO from it, and DPO + SFT on pairs of 4 candidates from it; both against a longer control, 3 passes
    over the same best answers (more steps than the control and either method together); and GRPO from it for as
    many steps in all as the longer control;
  - PPO with the rule reward: the demo's PPO settings (recipes/demo/ppo.yaml, 32 responses an update), beside the
    paper-settings PPO against the learned reward model, and the validation search's (recipes/demo/ppo_rule.yaml,
    256 an update) on GRPO's problems for GRPO's updates, against GRPO's control; with what their rollouts logged.
Each entry holds held-out accuracy (`score5`, `score45`, `by_operation`) and, where the run has them, the 3D curves
on the seed's scenario-1 pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from prefopt.experiments import diagnose

THREE_D = ("eval/3d/delta_chosen", "eval/3d/delta_rejected")
# what PPO's rollouts log, update by update: whether its reward rises, how far it moves, and what else changes
PPO_ROLLOUTS = ("objective/scores", "objective/kl", "objective/entropy", "response/length_mean", "loss/value_avg")
PER_UPDATE = {"ppo": lambda recipe: recipe["ppo"]["rollout_batch_size"],
              "grpo": lambda recipe: recipe["grpo"]["rollout_prompts"] * recipe["grpo"]["group_size"]}


@dataclass(frozen=True)
class Selected:
    """Sizes of the selected-settings runs (the demo's, which the validation search chose)."""

    prompts: int = 1500  # training problems of the DPO + SFT pairs
    grpo_problems: int = 12800  # GRPO's training problems (256 a step × 100 steps: each seen twice)
    grpo_steps: int = 100
    wide_problems: int = 51200  # GRPO at 1,024 problems an update (recipes/demo/grpo_1024.yaml): each seen twice
    ppo_steps: int = 40
    long_passes: int = 3  # the longer control's passes over the best answers (the control makes one)

    @property
    def long_steps(self) -> int:
        """The longer control's steps: its passes at the control's steps a pass."""
        return self.long_passes * self.grpo_steps

    @property
    def equal_updates(self) -> int:
        """GRPO's updates after the control so that both together make the longer control's steps."""
        return self.long_steps - self.grpo_steps


QUICK = Selected(prompts=48, grpo_problems=16, grpo_steps=2, wide_problems=16, ppo_steps=2, long_passes=2)
TOY_GENERATE = ["generate.n=8", "generate.max_new_tokens=16"]  # quick mode: toy sizes (a 30-step base needs 8 tries)
TOY_JUDGE = ["judge.best_min_score=1"]  # a 30-step base is never right: its control trains on its best anyway
TOY_TRAIN = ["train.micro_batch_size=4"]
PPO_TOY = ["ppo.rollout_batch_size=32", "train.micro_batch_size=4", "ppo.max_new_tokens=12"]
# after the control, chosen on seed 0's validation split from the control's model (docs/paper.md lists the numbers)
AFTER_CONTROL_GRPO = ["grpo.rollout_prompts=64", "grpo.group_size=8"]
# (3 passes at λ 2, the DPO + SFT settings of that search; recipes/demo/onpolicy.yaml has since been chosen again)
AFTER_CONTROL_DPO = ["optim.lr=3e-5", "loss.sft_weight=2.0", "train.epochs=3"]
# the control's best rate at GRPO's 1,024 problems an update, on the same validation search (docs/selection.md)
WIDE_CONTROL = ["optim.lr=8e-4"]
# quick mode (CI) for the 1,024-an-update GRPO runs: a few problems an update, no accumulation
WIDE_QUICK = ["train.micro_batch_size=16", "train.grad_accum=1", "grpo.rollout_prompts=8", "grpo.max_new_tokens=12"]


def run(seed, sizes: Selected, quick: bool, eval_pairs) -> dict:
    """The selected-settings runs of one seed (`seed`: a prefopt.experiments.paper.Seed); their held-out numbers."""
    out = {}
    pairs, best = candidates(seed, "onpolicy", onpolicy_problems(seed, sizes), sizes.prompts, quick)
    # run directories named apart from the paper-settings runs' (`dpo_sft` is Table 10's): a generate output that
    # exists is resumed, not redone, so a shared name would evaluate the other run's answers
    rows = seed.train("dpo", "recipes/demo/onpolicy.yaml", "selected_dpo_sft", pairs, eval_pairs, 0,
                      *(TOY_TRAIN if quick else []))
    steps = max(r["step"] for r in rows)
    out["dpo_sft"] = {**seed.accuracy(seed.dir / "selected_dpo_sft" / "model", "eval_selected_dpo_sft"),
                      "curves": curves(rows, THREE_D)}
    seed.train("sft", "recipes/demo/rft.yaml", "rft", best, "null", steps, *(TOY_TRAIN if quick else []))
    out["rft"] = seed.accuracy(seed.dir / "rft" / "model", "eval_rft")
    problems = f"builtin:arith/prompts/train/12800/{7 + seed.seed}"
    grpo_sets = ["train.micro_batch_size=16", "grpo.rollout_prompts=8", "grpo.max_new_tokens=12"] if quick else []
    rows = seed.train("grpo", "recipes/demo/grpo.yaml", "grpo", problems, eval_pairs, sizes.grpo_steps, *grpo_sets)
    out["grpo"] = {**seed.accuracy(seed.dir / "grpo" / "model", "eval_grpo"), "curves": curves(rows, THREE_D),
                   "train_accuracy": curves(rows, ("grpo/accuracy",))["grpo/accuracy"],
                   "rollouts": curves(rows, ("grpo/zero_std_frac", "grpo/entropy")),
                   "responses": responses_drawn(seed.dir / "grpo", "grpo")}
    out["grpo_sft"] = with_sft_term(seed, sizes, eval_pairs, problems, grpo_sets)
    _, best = candidates(seed, "grpo_control", problems, sizes.grpo_problems, quick)
    batch = one_pass(count_rows(best), sizes.grpo_steps)
    seed.train("sft", "recipes/demo/rft.yaml", "rft_grpo", best, "null", sizes.grpo_steps, batch)
    out["rft_grpo"] = seed.accuracy(seed.dir / "rft_grpo" / "model", "eval_rft_grpo")
    seed.train("sft", "recipes/demo/rft.yaml", "rft_long", best, "null", sizes.long_steps, batch)
    out["rft_long"] = seed.accuracy(seed.dir / "rft_long" / "model", "eval_rft_long")
    out.update(after_control(seed, sizes, quick, eval_pairs, problems, grpo_sets))
    out.update(wider(seed, sizes, quick, eval_pairs))
    out["ppo_rule"] = ppo(seed, "ppo_rule", "recipes/demo/ppo.yaml", f"builtin:arith/prompts/train/512/{seed.seed}",
                          eval_pairs, sizes.ppo_steps, "ppo.reward.kind=rule", "ppo.reward.path=null")
    out["ppo_256"] = ppo(seed, "ppo_256", "recipes/demo/ppo_rule.yaml", problems, eval_pairs, sizes.grpo_steps,
                         *(PPO_TOY if quick else []))
    return out


def rl_run(seed, command: str, recipe: str, name: str, problems: str, eval_pairs, steps: int, sets, rollouts) -> dict:
    """An RL run (`grpo` or `ppo`) from the model `sets` names, the base by default: its held-out numbers, 3D curves
    and the rollout statistics named in `rollouts`, as every RL row of the page keeps them."""
    rows = seed.train(command, recipe, name, problems, eval_pairs, steps, *sets)
    return {**seed.accuracy(seed.dir / name / "model", f"eval_{name}"), "curves": curves(rows, THREE_D),
            "rollouts": curves(rows, rollouts)}


def ppo(seed, name: str, recipe: str, problems: str, eval_pairs, steps: int, *sets: str) -> dict:
    """A PPO run from the base: its held-out numbers, 3D curves, what its rollouts logged and how many it drew."""
    return {**rl_run(seed, "ppo", recipe, name, problems, eval_pairs, steps, sets, PPO_ROLLOUTS),
            "responses": responses_drawn(seed.dir / name, "ppo")}


def with_sft_term(seed, sizes: Selected, eval_pairs, problems: str, grpo_sets: list) -> dict:
    """GRPO with an SFT term on its right answers (recipes/demo/grpo_sft.yaml), on GRPO's problems."""
    return rl_run(seed, "grpo", "recipes/demo/grpo_sft.yaml", "grpo_sft", problems, eval_pairs, sizes.grpo_steps,
                  grpo_sets, ("grpo/zero_std_frac", "grpo/entropy", "grpo/sft_frac"))


def after_control(seed, sizes: Selected, quick: bool, eval_pairs, problems: str, grpo_sets: list) -> dict:
    """GRPO, and DPO + SFT on the control's own pairs, each started from the control's model (`rft_grpo`)."""
    control = seed.dir / "rft_grpo" / "model"
    start = [f"model.path={control}"]  # the reference follows (model.ref_path defaults to the path)
    sets = [*start, *AFTER_CONTROL_GRPO, *grpo_sets]
    out = {"rft_then_grpo": grpo_from(seed, "rft_then_grpo", sizes.grpo_steps, eval_pairs, problems, sets),
           "rft_then_grpo_equal": equal_steps(seed, sizes, eval_pairs, problems, sets)}
    pairs, _ = candidates(seed, "rft_onpolicy", onpolicy_problems(seed, sizes), sizes.prompts, quick, model=control)
    rows = seed.train("dpo", "recipes/demo/onpolicy.yaml", "rft_then_dpo_sft", pairs, eval_pairs, 0, *start,
                      *AFTER_CONTROL_DPO, *(TOY_TRAIN if quick else []))
    out["rft_then_dpo_sft"] = {**seed.accuracy(seed.dir / "rft_then_dpo_sft" / "model", "eval_rft_then_dpo_sft"),
                               "curves": curves(rows, THREE_D), "pairs": count_rows(pairs)}
    return out


def grpo_from(seed, name: str, steps: int, eval_pairs, problems: str, sets: list) -> dict:
    """GRPO (recipes/demo/grpo.yaml) for `steps` updates, from the model `sets` names; its held-out numbers."""
    return rl_run(seed, "grpo", "recipes/demo/grpo.yaml", name, problems, eval_pairs, steps, sets,
                  ("grpo/zero_std_frac", "grpo/accuracy"))


def equal_steps(seed, sizes: Selected, eval_pairs, problems: str, sets: list) -> dict:
    """GRPO from the control's model for as many steps in all as the longer control (2× GRPO's updates, 3× in all):
    held to GRPO's own count it is 2 passes short of the longer control, and on docs/scarce.md's bases it was still
    rising on validation where the longer control had levelled off."""
    return grpo_from(seed, "rft_then_grpo_equal", sizes.equal_updates, eval_pairs, problems, sets)


def wider(seed, sizes: Selected, quick: bool, eval_pairs) -> dict:
    """GRPO at 1,024 problems × 2 an update (recipes/demo/grpo_1024.yaml), the same with the SFT term, and their
    control at that size: the best of 4 answers from the base to the same problems (as many samples as GRPO draws),
    one pass in as many steps, at the control's own best rate."""
    problems = f"builtin:arith/prompts/train/{sizes.wide_problems}/{7 + seed.seed}"
    sets = WIDE_QUICK if quick else []
    out = {"grpo_1024": rl_run(seed, "grpo", "recipes/demo/grpo_1024.yaml", "grpo_1024", problems, eval_pairs,
                               sizes.grpo_steps, sets, ("grpo/zero_std_frac", "grpo/accuracy")),
           "grpo_1024_sft": wide_sft_term(seed, sizes, eval_pairs, problems, sets)}
    pairs, best = candidates(seed, "candidates_1024", problems, sizes.wide_problems, quick)
    seed.train("sft", "recipes/demo/rft.yaml", "rft_1024", best, "null", sizes.grpo_steps,
               one_pass(count_rows(best), sizes.grpo_steps), *WIDE_CONTROL)
    # what the base can sample on those problems, by operation: the right answers both GRPO and the control learn from
    samples = diagnose.operation_rates(diagnose.read_rows(seed.dir / "candidates_1024" / "generations.jsonl"))
    out["rft_1024"] = {**seed.accuracy(seed.dir / "rft_1024" / "model", "eval_rft_1024"), "samples_by_operation": samples}
    out["dpo_sft_1024"] = wide_dpo_sft(seed, sizes, eval_pairs, pairs)
    return out


def wide_dpo_sft(seed, sizes: Selected, eval_pairs, pairs: Path) -> dict:
    """DPO + SFT on the pairs of the wide control's candidates (recipes/demo/onpolicy_1024.yaml), one pass in the
    control's steps: the preference family at the size where the control is strongest, on the same samples."""
    count = count_rows(pairs)
    rows = seed.train("dpo", "recipes/demo/onpolicy_1024.yaml", "dpo_sft_1024", pairs, eval_pairs, sizes.grpo_steps,
                      one_pass(count, sizes.grpo_steps))
    return {**seed.accuracy(seed.dir / "dpo_sft_1024" / "model", "eval_dpo_sft_1024"), "curves": curves(rows, THREE_D),
            "pairs": count}


def one_pass(rows: int, steps: int) -> str:
    """The micro-batch that makes `steps` steps one pass over `rows` rows (at least one row a step)."""
    return f"train.micro_batch_size={max(1, rows // steps)}"


def wide_sft_term(seed, sizes: Selected, eval_pairs, problems: str, sets: list) -> dict:
    """GRPO at 1,024 problems an update with an SFT term on its right answers (recipes/demo/grpo_1024_sft.yaml, the
    validation search's best RL run at that size), on the problems of GRPO at that size and its control."""
    return rl_run(seed, "grpo", "recipes/demo/grpo_1024_sft.yaml", "grpo_1024_sft", problems, eval_pairs,
                  sizes.grpo_steps, sets, ("grpo/zero_std_frac", "grpo/accuracy", "grpo/sft_frac"))


def onpolicy_problems(seed, sizes: Selected) -> str:
    """The selected DPO + SFT's training problems (the base's pairs and the control's are judged on the same ones)."""
    return f"builtin:arith/prompts/train/{sizes.prompts}/{100 + seed.seed}"


def candidates(seed, name: str, prompts: str, count: int, quick: bool, model=None):
    """4 candidates (8 in quick mode) from `model` (the base by default) for `count` problems of `prompts`, judged:
    (pairs, best answers)."""
    here = seed.dir / name
    gens = seed.prefopt("generate", "recipes/demo/onpolicy.yaml", f"model.path={model or seed.base}",
                        f"data.train={prompts}", f"generate.max_prompts={count}", f"generate.seed={seed.seed}",
                        f"train.output_dir={here}", *(TOY_GENERATE if quick else []))
    seed.prefopt("judge", "recipes/demo/onpolicy.yaml", f"judge.input={gens}", f"train.output_dir={here}",
                 *(TOY_JUDGE if quick else []))
    return here / "pairs.jsonl", here / "best.jsonl"


def responses_drawn(run_dir: Path, command: str) -> int:
    """Responses a `grpo` or `ppo` run sampled in all (updates × responses an update), from the recipe it ran."""
    recipe = yaml.safe_load((Path(run_dir) / "recipe.yaml").read_text())
    return recipe["train"]["max_steps"] * PER_UPDATE[command](recipe)


def count_rows(path) -> int:
    """The rows of a JSONL file that `judge` wrote (pairs or best answers): the harnesses' sizes and step counts."""
    with open(path) as rows:
        return sum(1 for _ in rows)


def curves(rows: list[dict], keys) -> dict[str, list]:
    """Each metric in `keys` over steps, as [step, value] pairs, from a run's metrics rows (the harnesses' one reader)."""
    return {key: [[row["step"], row[key]] for row in rows if key in row] for key in keys}

