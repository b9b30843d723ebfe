"""Where metrics go (rank 0 only): metrics.jsonl always, a rich progress bar, and W&B when `log.wandb` is on."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from prefopt import rundir
from prefopt.fsutil import write_atomic
from prefopt.recipe import recipe_to_dict
from prefopt.schema import Recipe

SECRET = re.compile(r"(api[_-]?key|token|secret|password)", re.I)
KEY_FIGURES = ("loss", "rewards/margins", "rewards/accuracies", "3d/drop_ratio", "objective/scores", "objective/kl",
               "tokens_per_s")


def scrub(obj):
    """Drop values under secret-looking keys (api_key, token, ...); names of env vars (`*_env`) are kept."""
    if isinstance(obj, dict):
        return {k: ("<redacted>" if SECRET.search(k) and not k.endswith("_env") else scrub(v)) for k, v in obj.items()}
    return obj


class Sinks:
    """Fan metrics out to the run directory, the console and W&B; a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path, recipe: Recipe, total_steps: int, rank: int, resume_step: int = 0):
        self.active = rank == 0
        self.run_dir, self.recipe, self.wandb = run_dir, recipe, None
        self.console = Console(stderr=True)
        if not self.active:
            return
        self.jsonl = run_dir / rundir.METRICS
        _truncate_after(self.jsonl, resume_step)  # steps past the checkpoint are redone, not duplicated
        self.progress = None
        if recipe.log.console:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                                     "{task.total}"), TimeRemainingColumn(), TextColumn("{task.fields[figures]}"),
                                     console=self.console, transient=False)
            self.task = self.progress.add_task(recipe.name, total=total_steps, completed=resume_step, figures="")
            self.progress.start()
        if recipe.log.wandb:
            self._init_wandb()

    def _init_wandb(self) -> None:
        import wandb

        log = self.recipe.log
        if not os.environ.get("WANDB_API_KEY") and os.environ.get("WANDB_MODE") is None:
            os.environ["WANDB_MODE"] = "offline"  # no key: keep the run locally, sync later with `wandb sync`
        id_file = self.run_dir / rundir.WANDB_ID
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:8]
        self.wandb = wandb.init(project=log.project, name=log.name or self.recipe.name, group=log.group,
                                tags=list(log.tags), config=scrub(recipe_to_dict(self.recipe)), id=run_id,
                                resume="allow", dir=os.environ.get("WANDB_DIR"))
        id_file.write_text(run_id)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record one logging step everywhere."""
        if not self.active:
            return
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.progress is not None:
            figs = "  ".join(f"{k.split('/')[-1]} {metrics[k]:.4g}" for k in KEY_FIGURES if k in metrics)
            self.progress.update(self.task, completed=step, figures=figs)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def note(self, text: str) -> None:
        """A one-line message on the console (rank 0)."""
        if self.active:
            self.console.print(text)

    def finish(self, images: dict[str, Path]) -> None:
        """Stop the bar, upload plots to W&B and close the run."""
        if not self.active:
            return
        if self.progress is not None:
            self.progress.stop()
        if self.wandb is not None:
            import wandb

            self.wandb.log({k: wandb.Image(str(p)) for k, p in images.items() if p.exists()})
            self.wandb.finish()


def _truncate_after(path: Path, step: int) -> None:
    """Keep the rows up to a resumed run's checkpoint step; a run starting at step 0 starts a new file."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and step > 0 and json.loads(ln).get("step", 0) <= step]
    write_atomic(path, "".join(ln + "\n" for ln in keep))
