"""The demo's final tables: held-out accuracy of each model, the on-policy rounds, the 3D metrics on the same
pairs, and where everything is. Called by scripts/demo.py; `python scripts/demo_report.py` re-prints a finished run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prefopt.compare import final
from prefopt.rundir import read_metrics

# Each trained model's column and run directory. The first is the shipped recipe with its SFT term removed
# (`loss.sft_weight=0`), run to measure the 3D-properties the term prevents: an ablation, not a recipe we ship.
RUNS = {"DPO, no SFT term (ablation)": "dpo", "DPO + SFT": "dpo_sft", "GRPO": "grpo"}
THREE_D = ("3d/delta_chosen", "3d/delta_rejected", "3d/drop_ratio", "3d/chosen_below_ref_frac", "3d/entropy",
           "rewards/accuracies")


def last(rows: list[dict], key: str) -> float:
    """The run's last logged value of `key` (nan when it never logged it), read as `prefopt compare` reads it."""
    value = final(rows, key, eval_fallback=False)
    return float("nan") if value is None else value


def plot_3d(metrics: dict[str, list[dict]], out: Path) -> Path:
    """Δ chosen and Δ rejected on the judged pairs over training, every run on the same axes."""
    from prefopt.plots import plt, series

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, key in zip(axes, ("eval/3d/delta_chosen", "eval/3d/delta_rejected")):
        for name, rows in metrics.items():
            ax.plot(*series(rows, key), marker="o", label=name)
        ax.set(title=key.split("/")[-1].replace("_", " ") + ": log π - log π_ref on the pairs", xlabel="step")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def report(root: Path, evals: dict[str, dict], metrics: dict[str, list[dict]], counts: dict, seconds: float) -> None:
    console = Console(width=None if sys.stdout.isatty() else 120)  # logs and CI: no wrapping at 80 columns
    n = int(evals["SFT base"]["count"])
    table = Table(title=f"prefopt demo: on-policy alignment of the SFT base on embedded arithmetic "
                        f"(held-out test problems, n={n}, greedy)")
    table.add_column("")
    for name in evals:
        table.add_column(name, justify="right")
    base = evals["SFT base"]["score45"]
    table.add_row("accuracy: 4-5 points", *(f"{e['score45']:.1%}" for e in evals.values()))
    table.add_row("vs the base (pp)", *(f"{100 * (e['score45'] - base):+.1f}" for e in evals.values()))
    table.add_row("5-point answers", *(f"{e['score5']:.1%}" for e in evals.values()))
    console.print(table)
    pairs = Table(title="on-policy pairs (4 candidates per training problem, rule judge): the DPO runs' data")
    pairs.add_column("")
    pairs.add_column("count", justify="right")
    for key, value in counts.items():
        pairs.add_row(key, str(int(value)))
    console.print(pairs)
    three_d = Table(title="3D properties after training, on those pairs, against the base (eval/)")
    three_d.add_column("metric")
    for name in metrics:
        three_d.add_column(name, justify="right")
    for key in THREE_D:
        three_d.add_row(key, *(f"{last(rows, 'eval/' + key):.4g}" for rows in metrics.values()))
    three_d.add_row("3d/unseen_logp", *(f"{last(rows, '3d/unseen_logp'):.4g}" for rows in metrics.values()))
    console.print(three_d)
    grpo = [r for r in metrics["GRPO"] if "grpo/reward_mean" in r]
    if grpo:
        console.print(f"GRPO: training accuracy {grpo[0]['grpo/accuracy']:.3f} -> {grpo[-1]['grpo/accuracy']:.3f} "
                      f"(logged every 10 updates), zero-signal groups {grpo[-1]['grpo/zero_std_frac']:.2f}, "
                      f"KL to the base {grpo[-1].get('grpo/kl_ref', float('nan')):.3f}, over {grpo[-1]['step']} updates")
    for name in sorted(p.name for p in root.iterdir() if p.is_dir()):
        console.print(f"  {name:10s} {root / name}")
    console.print(f"  3D plot    {plot_3d(metrics, root / 'three_d.png')}")
    console.print(f"demo finished in {seconds / 60:.1f} min (install not included)")


def main(root: Path) -> None:
    evals = {name: json.loads((root / f"eval_{d}" / "eval.json").read_text())
             for name, d in {"SFT base": "base", **RUNS}.items()}
    runs = {name: root / d for name, d in RUNS.items()}
    counts = {k[len("judge/"):]: v for k, v in read_metrics(root / "judge")[-1].items() if k.startswith("judge/")}
    report(root, evals, {name: read_metrics(path) for name, path in runs.items()}, counts, float("nan"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
