"""Print the demo's final table: held-out accuracy of SFT, DPO, DPO + SFT and PPO, the pairs, and the 3D summary."""

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prefopt.compare import final

RUNS = {"SFT base": "eval_sft", "DPO": "eval_dpo", "DPO + SFT": "eval_dpo_sft", "PPO": "eval_ppo"}
TRAINED = {"DPO": "dpo", "DPO + SFT": "dpo_sft", "PPO": "ppo"}
THREE_D = ("3d/delta_chosen", "3d/delta_rejected", "3d/drop_ratio", "3d/log_grad_ratio", "3d/chosen_below_ref_frac",
           "3d/entropy", "rewards/accuracies")


def last(rows, key):
    """The run's last logged value of `key` (nan when it never logged it), read as `prefopt compare` reads it."""
    value = final(rows, key, eval_fallback=False)
    return float("nan") if value is None else value


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_dpo_vs_ppo(metrics: dict[str, list[dict]], out: Path) -> Path:
    """Δ chosen and Δ rejected on the judged pairs over training, every trained run on the same axes."""
    from prefopt.plots import plt, series

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, key in zip(axes, ("eval/3d/delta_chosen", "eval/3d/delta_rejected")):
        for name, rows in metrics.items():
            ax.plot(*series(rows, key), marker="o", label=name)
        ax.set(title=key.split("/")[-1].replace("_", " ") + ": log π - log π_ref on the judged pairs", xlabel="step")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(root: Path) -> None:
    evals = {name: json.loads((root / d / "eval.json").read_text()) for name, d in RUNS.items()}
    counts = rows_of(root / "judge" / "metrics.jsonl")[-1]
    console = Console(width=None if sys.stdout.isatty() else 120)  # logs and CI: no wrapping at 80 columns
    t = Table(title="prefopt demo: on-policy DPO and RLHF-PPO on embedded arithmetic (held-out problems, greedy)")
    t.add_column("")
    for name in RUNS:
        t.add_column(name, justify="right")
    n = int(evals["SFT base"]["count"])
    t.add_row(f"accuracy: 4-5 points (n={n})", *(f"{e['score45']:.1%}" for e in evals.values()))
    t.add_row("5-point answers", *(f"{e['score5']:.1%}" for e in evals.values()))
    console.print(t)
    p = Table(title="on-policy pairs (8 candidates per prompt, rule judge): DPO's data and the reward model's")
    p.add_column("")
    p.add_column("count", justify="right")
    for k, v in counts.items():
        if k.startswith("judge/"):
            p.add_row(k[len("judge/"):], str(int(v)))
    console.print(p)
    metrics = {name: rows_of(root / run / "metrics.jsonl") for name, run in TRAINED.items()}
    d = Table(title="3D properties after training, on the same judged pairs (eval/; DPO-style rewards at β 0.1)")
    d.add_column("metric")
    for name in TRAINED:
        d.add_column(name, justify="right")
    for key in THREE_D:
        d.add_row(key, *(f"{last(metrics[name], 'eval/' + key):.4g}" for name in TRAINED))
    d.add_row("3d/unseen_logp", *(f"{last(metrics[name], '3d/unseen_logp'):.4g}" for name in TRAINED))
    console.print(d)
    ppo = [r for r in metrics["PPO"] if "objective/scores" in r]
    rm = rows_of(root / "rm" / "metrics.jsonl")
    console.print(f"reward model: pair accuracy {last(rm, 'rewards/accuracies'):.2f} at the last step; "
                  f"PPO: reward-model score {ppo[0]['objective/scores']:.3f} -> {ppo[-1]['objective/scores']:.3f}, "
                  f"KL {ppo[-1]['objective/kl']:.3f}, over {ppo[-1]['step']} updates")
    for name in ("generate", "judge", "dpo", "dpo_sft", "rm", "ppo", "eval_sft", "eval_dpo", "eval_dpo_sft",
                 "eval_ppo"):
        console.print(f"  {name:13s} {root / name}")
    console.print("  3D plots      " + ", ".join(str(root / run / "plots" / "3d.png") for run in TRAINED.values()))
    console.print(f"  DPO vs PPO    {plot_dpo_vs_ppo(metrics, root / 'dpo_vs_ppo.png')}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
