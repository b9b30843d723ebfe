"""Collect a β sweep's run directories into a table (CSV and Markdown) and a plot of final metrics against β.

    python scripts/collect_sweep.py runs/<sweep name> [--out DIR]

Each run directory holds recipe.yaml and metrics.jsonl; the swept value is read from the resolved recipe, so
the table is right however the runs were launched. Writes sweep.csv, sweep.md and sweep.png into DIR (default:
the sweep directory) and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import yaml

from prefopt.compare import final_metrics

METRICS = ("loss", "rewards/accuracies", "rewards/margins", "3d/drop_ratio", "3d/chosen_below_ref_frac",
           "3d/unseen_logp", "eval/loss", "eval/rewards/accuracies")


def collect(root: Path) -> list[dict]:
    """One row per finished run under `root`: β values from its recipe, last logged value of each metric
    (read by `prefopt compare`'s own reader, so the sweep table and `prefopt compare` agree)."""
    rows = []
    for run in sorted(p for p in root.iterdir() if (p / "metrics.jsonl").exists() and (p / "recipe.yaml").exists()):
        loss = yaml.safe_load((run / "recipe.yaml").read_text())["loss"]
        found = final_metrics(run, METRICS)
        row = {"run": run.name, "beta": loss["beta"], "beta_chosen": loss["beta_chosen"],
               "beta_rejected": loss["beta_rejected"], "steps": found["steps"]}
        row.update({key: float("nan") if found[key] is None else found[key] for key in METRICS})
        rows.append(row)
    if not rows:
        sys.exit(f"collect_sweep: no run directories with recipe.yaml and metrics.jsonl under {root}")
    swept = next((k for k in ("beta_rejected", "beta_chosen", "beta") if len({r[k] for r in rows}) > 1), "beta")
    for r in rows:
        r["swept"] = swept
    return sorted(rows, key=lambda r: r[swept])


def markdown(rows: list[dict]) -> str:
    cols = ["run", "beta", "beta_chosen", "beta_rejected", "steps", *METRICS]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    swept = rows[0]["swept"]
    xs = [r[swept] for r in rows]
    keys = [k for k in METRICS if any(r[k] == r[k] for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3))
    for ax, key in zip(axes if len(keys) > 1 else [axes], keys):
        ax.plot(xs, [r[key] for r in rows], marker="o")
        ax.set(title=key, xlabel=swept, xscale="log")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(args.root)
    with (out / "sweep.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.md").write_text(markdown(rows))
    plot(rows, out / "sweep.png")
    print(markdown(rows), end="")
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.md'}, {out / 'sweep.png'}")


if __name__ == "__main__":
    main()
