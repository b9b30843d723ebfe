"""Print the demo's final table: accuracy before/after DPO, pairs kept/dropped, the 3D summary, and paths."""

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def last(rows, key):
    vals = [r[key] for r in rows if key in r]
    return vals[-1] if vals else float("nan")


def main(root: Path) -> None:
    runs = {"SFT model": "eval_sft", "DPO": "eval_dpo", "DPO + SFT": "eval_dpo_sft"}
    evals = {name: json.loads((root / d / "eval.json").read_text()) for name, d in runs.items()}
    counts = [json.loads(line) for line in (root / "judge" / "metrics.jsonl").read_text().splitlines()][-1]
    console = Console(width=None if sys.stdout.isatty() else 120)  # logs and CI: no wrapping at 80 columns
    t = Table(title="prefopt demo: on-policy DPO on embedded arithmetic (held-out problems, greedy)")
    t.add_column("")
    for name in runs:
        t.add_column(name, justify="right")
    n = int(evals["SFT model"]["count"])
    t.add_row(f"accuracy: 4-5 points (n={n})", *(f"{e['score45']:.1%}" for e in evals.values()))
    t.add_row("5-point answers", *(f"{e['score5']:.1%}" for e in evals.values()))
    console.print(t)
    p = Table(title="on-policy pairs (8 candidates per prompt, rule judge)")
    p.add_column("")
    p.add_column("count", justify="right")
    for k, v in counts.items():
        if k.startswith("judge/"):
            p.add_row(k[len("judge/"):], str(int(v)))
    console.print(p)
    d = Table(title="3D properties at the last step (DPO vs DPO + SFT)")
    d.add_column("metric")
    d.add_column("DPO", justify="right")
    d.add_column("DPO + SFT", justify="right")
    metrics = {r: [json.loads(x) for x in (root / r / "metrics.jsonl").read_text().splitlines()] for r in ("dpo", "dpo_sft")}
    for key in ("3d/delta_chosen", "3d/delta_rejected", "3d/drop_ratio", "3d/log_grad_ratio",
                "3d/chosen_below_ref_frac", "3d/unseen_logp", "3d/entropy", "rewards/accuracies"):
        d.add_row(key, *(f"{last(metrics[r], key):.4g}" for r in ("dpo", "dpo_sft")))
    console.print(d)
    for name in ("sft", "generate", "judge", "dpo", "dpo_sft", "eval_sft", "eval_dpo", "eval_dpo_sft"):
        console.print(f"  {name:13s} {root / name}")
    console.print(f"  3D plots      {root / 'dpo' / 'plots' / '3d.png'}, {root / 'dpo_sft' / 'plots' / '3d.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
