"""prefopt from Python: the same runs as the CLI, for notebooks and other tools.

    import prefopt
    run_dir = prefopt.train("recipes/tiny/dpo.yaml", overrides=["loss.beta=0.05"])            # prefopt dpo
    run_dir = prefopt.train("recipes/tiny/ppo.yaml", command="ppo")
    out = prefopt.generate("recipes/demo/generate.yaml", overrides=["generate.max_prompts=8"])
    counts = prefopt.judge("recipes/demo/judge.yaml")

A recipe is a path or a `prefopt.schema.Recipe`; overrides are `--set` strings. Bad input raises
`prefopt.errors.UserError` with the one-line message the CLI would print.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefopt.rundir import run_dir_of
from prefopt.schema import Recipe


def load(recipe: str | Path | Recipe, overrides=()) -> Recipe:
    """A resolved recipe (bases merged, overrides applied, flex-β filled), as `--dry-run` prints it."""
    from prefopt.objectives import resolve_betas
    from prefopt.recipe import apply_overrides, load_recipe

    resolved = apply_overrides(recipe, list(overrides)) if isinstance(recipe, Recipe) else \
        load_recipe(recipe, list(overrides))
    resolve_betas(resolved.loss)
    return resolved


def check(recipe: Recipe, command: str) -> None:
    """Every rule a training command's recipe must meet that needs no model (UserError): the objective's rules and
    its step's batch arithmetic for this world (WORLD_SIZE, as a launcher sets it)."""
    from prefopt.loop import preflight
    from prefopt.objectives import objective_for

    preflight(recipe, objective_for(command, recipe.loss), int(os.environ.get("WORLD_SIZE", 1)))


def train(recipe: str | Path | Recipe, overrides=(), command: str = "dpo", resume: bool = False) -> Path:
    """Run a training command (sft, dpo, ipo, slic, kto, rm, ppo, grpo) on the recipe; returns the run directory."""
    from prefopt.loop import train as run
    from prefopt.objectives import objective_for

    resolved = load(recipe, overrides)
    return run(resolved, objective_for(command, resolved.loss), resume=resume)


def generate(recipe: str | Path | Recipe, overrides=()) -> Path:
    """`prefopt generate`: sample candidates for data.train's prompts; returns the generations JSONL."""
    from prefopt.generation import generate as run

    resolved = load(recipe, overrides)
    return run(resolved, run_dir_of(resolved))


def judge(recipe: str | Path | Recipe, overrides=()) -> dict:
    """`prefopt judge`: pairs with kept/dropped counts (mode: pairs) or the eval summary (mode: eval)."""
    from prefopt.judging import judge as run

    resolved = load(recipe, overrides)
    return run(resolved, run_dir_of(resolved))


def execute(command: str, recipe: Recipe, resume: bool = False) -> Path:
    """Run a loaded recipe as `prefopt COMMAND` does; returns what the CLI prints as `output:` (the generations
    JSONL of `generate`, else the run directory)."""
    if command == "generate":
        return generate(recipe)
    if command == "judge":
        judge(recipe)
        return run_dir_of(recipe)
    return train(recipe, command=command, resume=resume)


def run(command: str, recipe: str | Path, *overrides: str, echo: bool = True):
    """Any command by name, as `prefopt COMMAND --recipe RECIPE --set ...` would run it (and printed as that line):
    the generations JSONL for `generate`, the counts for `judge`, the run directory for a training command."""
    if echo:
        print(f"$ prefopt {command} --recipe {recipe} " + " ".join(f"--set {s}" for s in overrides), flush=True)
    if command == "generate":
        return generate(recipe, overrides)
    if command == "judge":
        return judge(recipe, overrides)
    return train(recipe, overrides, command=command)


def accuracy(model: str, prompts: str, out_dir: str | Path, generate_recipe: str, judge_recipe: str,
             *overrides: str) -> dict:
    """Greedy answers of `model` to `prompts`, scored by a `judge.mode: eval` recipe: the shares of 5-point and
    4-5-point answers (`score5`, `score45`), as the demo and the paper harness report them."""
    generations = run("generate", generate_recipe, f"model.path={model}", f"data.train={prompts}",
                      f"train.output_dir={out_dir}", *overrides)
    return run("judge", judge_recipe, f"judge.input={generations}", f"train.output_dir={out_dir}")
