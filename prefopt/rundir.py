"""A run directory: where it is, the name of every file in it, and the recipe it records with its command.

    runs/<name>/                 train.output_dir, or runs/<recipe name>
      recipe.yaml                the recipe as written, under a `# prefopt <command>` line (COMMAND_LINE)
      metrics.jsonl              one JSON object per logged step (prefopt/sinks.py; `prefopt compare` reads it)
      wandb.txt                  the W&B run id, so a resumed run continues the same W&B run
      model/  adapter/           the trained policy (adapter/ and a merged model/ under LoRA)
      best/  last/               train.keep_best: the best step's weights while the run goes on; the last step's
      checkpoints/step_N/        DeepSpeed checkpoints and the loop's state (prefopt/checkpoint.py)
      plots/3d.png               the 3D curves of the run
      generations.jsonl          prefopt generate's candidates
      pairs.jsonl  best.jsonl    prefopt judge's pairs and best answers (mode: pairs); eval.json (mode: eval)
      judge_cache.jsonl          the llm judge's answers, so a rerun asks again only what it has not
"""

from __future__ import annotations

import json
from pathlib import Path

from prefopt.errors import UserError
from prefopt.fsutil import write_atomic

RECIPE, METRICS, WANDB_ID = "recipe.yaml", "metrics.jsonl", "wandb.txt"
MODEL, ADAPTER, BEST, LAST, CHECKPOINTS, PLOTS = "model", "adapter", "best", "last", "checkpoints", "plots"
GENERATIONS, PAIRS, BEST_ANSWERS = "generations.jsonl", "pairs.jsonl", "best.jsonl"
EVAL_SUMMARY, JUDGE_CACHE = "eval.json", "judge_cache.jsonl"
COMMAND_LINE = "# prefopt "


def run_dir_of(recipe) -> Path:
    """`train.output_dir`, or `runs/<recipe name>`."""
    return Path(recipe.train.output_dir or f"runs/{recipe.name}")


def command_of(run_dir: str | Path) -> str | None:
    """The command that made a run directory, from its recipe.yaml's first line; None when it records none."""
    recipe = Path(run_dir) / RECIPE
    first = recipe.read_text().split("\n", 1)[0] if recipe.is_file() else ""
    return first[len(COMMAND_LINE):].strip() if first.startswith(COMMAND_LINE) else None


def prepare(recipe, command: str, resume: bool = False) -> Path:
    """Check the run directory can take this command's run, create it, and return it (no files written).

    An `output_dir` that is a file is refused in one line; so is `--resume` of a directory that another command
    made (its checkpoints hold another objective's state)."""
    run_dir = run_dir_of(recipe)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"train.output_dir: {run_dir} exists and is a file, not a directory")
    made_by = command_of(run_dir)
    if resume and made_by is not None and made_by != command:
        raise UserError(f"--resume: {run_dir} holds a `prefopt {made_by}` run, not `prefopt {command}`; "
                        "set train.output_dir to this run's own directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def write_recipe(run_dir: Path, command: str, recipe_text: str) -> None:
    """recipe.yaml: the recipe under its command's line (what `prefopt compare` and `--resume` read back)."""
    write_atomic(run_dir / RECIPE, f"{COMMAND_LINE}{command}\n" + recipe_text)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All rows of a run's metrics.jsonl."""
    text = (Path(run_dir) / METRICS).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
