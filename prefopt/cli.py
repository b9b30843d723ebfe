"""`prefopt`: one Typer command per objective; each resolves its recipe, then trains (or prints it with --dry-run).

The command is the objective (`prefopt ipo` trains IPO); the loss's parameters come from the recipe, and the run's
recipe.yaml names the command in its first line. User mistakes print one line and exit 2; failures exit 1.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer

from prefopt import __version__
from prefopt.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Preference optimization that measures DPO's 3D-properties on every run.")

RecipeOpt = typer.Option(..., "--recipe", "-r", help="YAML recipe (see docs/recipes.md).")
SetOpt = typer.Option(None, "--set", "-s", help="Override a key: --set loss.beta=0.05 (repeatable).")
DryOpt = typer.Option(False, "--dry-run", help="Print the fully resolved recipe and exit.")
ResumeOpt = typer.Option(False, "--resume", help="Continue from the run directory's latest checkpoint.")

TRAINERS = {
    "sft": "Supervised fine-tuning: token-mean NLL on the completion.",
    "dpo": "DPO (Eq. 5) with flex-β (loss.beta_chosen / loss.beta_rejected) and + SFT (loss.sft_weight); "
           "loss.variant picks rdpo, nca, apo_zero, simpo, orpo, odpo or dpop instead.",
    "ipo": "IPO (Azar et al. Eq. 17): squared loss towards h = 1/(2τ), τ = loss.beta.",
    "slic": "SLiC-HF (Eq. 11): hinge on the log-prob margin, plus λ·NLL(chosen). No reference model.",
    "kto": "KTO (Ethayarajh et al. Eq. 8) on unpaired feedback: {prompt, completion, label: true/false} records.",
    "rm": "Bradley-Terry reward model (Eq. 3) on a sequence-score head; `judge` and `ppo` load it.",
    "ppo": "RLHF-PPO (Eq. 4): rollouts scored by ppo.reward (a `prefopt rm` model, the rule or an LLM judge), "
           "a KL penalty to the reference, GAE, clipped policy and value losses.",
    "grpo": "Group-relative RL (GRPO, Dr. GRPO, RLOO; DAPO's clip-higher): grpo.group_size responses per prompt "
            "scored by grpo.reward (rule, rm or llm judge), advantages within each group, no critic.",
}
PIPELINE = {
    "generate": "Sample generate.n candidates per prompt of data.train (resumable, sharded under torchrun).",
    "judge": "Score generate's candidates (rule, llm or rm judge) into best/worst pairs, or evaluate them "
             "(judge.mode: eval).",
}

# One runnable example per command, the last line of its --help (tests/test_cli.py checks each one resolves).
EXAMPLES = {
    "sft": "prefopt sft --recipe recipes/tiny/sft.yaml",
    "dpo": "prefopt dpo --recipe recipes/tiny/dpo.yaml --set loss.beta=0.05",
    "ipo": "prefopt ipo --recipe recipes/tiny/ipo.yaml",
    "slic": "prefopt slic --recipe recipes/tiny/slic.yaml",
    "kto": "prefopt kto --recipe recipes/tiny/kto.yaml",
    "rm": "prefopt rm --recipe recipes/tiny/rm.yaml",
    "ppo": "prefopt ppo --recipe recipes/tiny/ppo.yaml",
    "grpo": "prefopt grpo --recipe recipes/tiny/grpo.yaml",
    "generate": "prefopt generate --recipe recipes/demo/generate.yaml --set generate.max_prompts=16",
    "judge": "prefopt judge --recipe recipes/demo/judge.yaml",
    "compare": "prefopt compare runs/tiny_dpo runs/tiny_ipo --out compare.png",
}


def _epilog(command: str) -> str:
    return f"Example: {EXAMPLES[command]}"


def _version(value: bool):
    if value:
        typer.echo(f"prefopt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Preference optimization that measures DPO's 3D-properties on every run."""


def _run(command: str, recipe_path: str, overrides, dry_run: bool, resume: bool) -> None:
    """Load the recipe, check it (before any model loads; --dry-run too), then run the command through prefopt.api."""
    from prefopt import api

    try:
        recipe = api.load(recipe_path, overrides or [])
        if command in TRAINERS:
            api.check(recipe, command)
        if dry_run:
            from prefopt.recipe import dump_recipe

            typer.echo(dump_recipe(recipe), nl=False)
            return
        _quiet_libraries()
        out = api.execute(command, recipe, resume=resume)
        if int(os.environ.get("RANK", 0)) == 0:
            typer.echo(f"output: {out}")
        _leave_process_group()
    except UserError as e:
        typer.echo(f"prefopt {command}: {e}", err=True)
        raise typer.Exit(e.exit_code) from None


def _leave_process_group() -> None:
    """Once every rank is done, destroy the process group before the interpreter exits. A rank that exits with
    gloo's group alive can abort in its teardown ("terminate called without an active exception", once in CI)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not _cuda() else "cuda")
    import logging

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    try:
        from deepspeed.utils import logger

        logger.setLevel(logging.WARNING)
    except ImportError:
        pass
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _make(command: str, help_text: str):
    def cmd(recipe: str = RecipeOpt, set_: Optional[List[str]] = SetOpt, dry_run: bool = DryOpt,
            resume: bool = ResumeOpt):
        _run(command, recipe, set_, dry_run, resume)

    cmd.__doc__ = help_text
    app.command(command, help=help_text, epilog=_epilog(command))(cmd)


for _name, _help in {**TRAINERS, **PIPELINE}.items():
    _make(_name, _help)


@app.command("compare", epilog=_epilog("compare"))
def compare_runs(runs: List[str] = typer.Argument(..., help="Run directories (each with metrics.jsonl)."),
                 out: str = typer.Option("compare.png", "--out", "-o", help="Where to write the PNG.")):
    """Runs side by side: one PNG of their 3D curves and a table of final metrics (works for any objective)."""
    try:
        from pathlib import Path

        from prefopt.compare import compare, print_table

        rows, png = compare(runs, Path(out))
        print_table(rows)
        typer.echo(f"plot: {png}")
    except UserError as e:
        typer.echo(f"prefopt compare: {e}", err=True)
        raise typer.Exit(e.exit_code) from None


def main() -> None:
    """Console-script entry point."""
    app(prog_name="prefopt")


if __name__ == "__main__":
    sys.exit(main())
