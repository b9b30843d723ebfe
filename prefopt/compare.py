"""`prefopt compare RUN_DIR...`: several runs side by side, as one PNG of their 3D curves and a table of final metrics.

It reads only each run's metrics.jsonl and recipe.yaml, so it works offline on runs from any machine, and on any
objective: a metric a run never logged is left blank. The 3D curves are the training values where a run logs
them, else its eval values (PPO trains on rollouts and reports the 3D metrics on the eval pairs).
"""

from __future__ import annotations

from pathlib import Path

from prefopt import rundir
from prefopt.errors import UserError
from prefopt.rundir import read_metrics

# The table's rows, in order: the paper's quantities first, then each family's own figures.
TABLE = ("3d/delta_chosen", "3d/delta_rejected", "3d/drop_ratio", "3d/log_grad_ratio", "3d/chosen_below_ref_frac",
         "3d/unseen_logp", "3d/entropy", "logps/chosen_per_token", "logps/rejected_per_token", "rewards/accuracies",
         "loss", "objective/scores", "objective/kl", "grpo/reward_mean", "grpo/accuracy", "grpo/kl_ref", "eval/accuracy")
CURVES = (("3d/delta_chosen", "Δ chosen: log π - log π_ref"), ("3d/delta_rejected", "Δ rejected: log π - log π_ref"),
          ("3d/unseen_logp", "unseen probe log-prob / token"), ("3d/chosen_below_ref_frac", "chosen below reference"))


def read_run(run_dir: str | Path) -> tuple[str, list[dict]]:
    """(objective, metrics rows) of a run directory; the objective comes from recipe.yaml's `# prefopt CMD` line."""
    run_dir = Path(run_dir)
    if not (run_dir / rundir.METRICS).is_file():
        raise UserError(f"{run_dir}: not a run directory (no {rundir.METRICS})")
    return rundir.command_of(run_dir) or "?", read_metrics(run_dir)


def final(rows: list[dict], key: str, eval_fallback: bool = True) -> float | None:
    """The last logged value of `key` (or of `eval/key` when the run logs no training value); None if never."""
    for name in (key, f"eval/{key}") if eval_fallback else (key,):
        values = [r[name] for r in rows if name in r]
        if values:
            return values[-1]
    return None


def final_metrics(run_dir: str | Path, keys=TABLE) -> dict:
    """Final values of `keys` for one run, with its name, objective and last step."""
    objective, rows = read_run(run_dir)
    out = {"run": Path(run_dir).name, "objective": objective, "steps": max((r["step"] for r in rows), default=0)}
    out.update({key: final(rows, key) for key in keys})
    return out


def plot(runs: dict[str, list[dict]], out: Path) -> Path:
    """One PNG: a panel per 3D curve, one line per run."""
    from prefopt.plots import plt, series

    fig, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.6))
    for ax, (key, title) in zip(axes, CURVES):
        for name, rows in runs.items():
            steps, values = series(rows, key)
            if not steps:
                steps, values = series(rows, f"eval/{key}")
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=name)
        ax.set(title=title, xlabel="step")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def compare(run_dirs: list[str | Path], out: Path) -> tuple[list[dict], Path]:
    """Final metrics of each run (one dict per run) and the PNG of their curves."""
    if not run_dirs:
        raise UserError("compare: name at least one run directory")
    rows = [final_metrics(d) for d in run_dirs]
    names = [f"{r['run']} ({r['objective']})" for r in rows]
    if len(set(names)) < len(names):  # runs of the same name from different sweeps: tell them apart by path
        names = [f"{d} ({r['objective']})" for d, r in zip(run_dirs, rows)]
    return rows, plot({name: read_run(d)[1] for name, d in zip(names, run_dirs)}, out)


def print_table(rows: list[dict]) -> None:
    """The final metrics as a rich table (metrics down, runs across)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="final metrics (training value, else eval)")
    table.add_column("metric")
    for r in rows:
        table.add_column(f"{r['run']}\n{r['objective']}, step {r['steps']}", justify="right")
    for key in TABLE:
        if any(r[key] is not None for r in rows):
            table.add_row(key, *("" if r[key] is None else f"{r[key]:.4g}" for r in rows))
    Console(width=200).print(table)
