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

from pathlib import Path

from prefopt.schema import Recipe


def load(recipe: str | Path | Recipe, overrides=()) -> Recipe:
    """A resolved recipe (bases merged, overrides applied, flex-β filled), as `--dry-run` prints it."""
    from prefopt.objectives import resolve_betas
    from prefopt.recipe import apply_overrides, load_recipe

    resolved = apply_overrides(recipe, list(overrides)) if isinstance(recipe, Recipe) else \
        load_recipe(recipe, list(overrides))
    resolve_betas(resolved.loss)
    return resolved


def train(recipe: str | Path | Recipe, overrides=(), command: str = "dpo", resume: bool = False) -> Path:
    """Run a training command (sft, dpo, ipo, slic, kto, rm, ppo) on the recipe; returns the run directory."""
    from prefopt.loop import train as run
    from prefopt.objectives import objective_for

    resolved = load(recipe, overrides)
    return run(resolved, objective_for(command, resolved.loss), resume=resume)


def generate(recipe: str | Path | Recipe, overrides=()) -> Path:
    """`prefopt generate`: sample candidates for data.train's prompts; returns the generations JSONL."""
    from prefopt.generation import generate as run
    from prefopt.loop import run_dir_of

    resolved = load(recipe, overrides)
    return run(resolved, run_dir_of(resolved))


def judge(recipe: str | Path | Recipe, overrides=()) -> dict:
    """`prefopt judge`: pairs with kept/dropped counts (mode: pairs) or the eval summary (mode: eval)."""
    from prefopt.judging import judge as run
    from prefopt.loop import run_dir_of

    resolved = load(recipe, overrides)
    return run(resolved, run_dir_of(resolved))
