"""Collect a sweep's run directories into a table (CSV and Markdown) and a plot, ranked by a validation metric.

    python scripts/collect_sweep.py runs/<sweep name> [--metric eval/accuracy] [--mode max|min] [--out DIR]

Each run directory holds recipe.yaml and metrics.jsonl. The swept keys are the recipe keys whose values differ
between runs, read from each resolved recipe, so the table is right however the runs were launched. With
--metric, runs are ranked by that metric's best evaluation (the step `train.keep_best` would keep) and its last
one, and the winner's overrides are printed as `--set` flags. Choose on a validation set, never on the test set.
Writes sweep.csv, sweep.md and sweep.png into DIR (default: the sweep directory) and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import yaml

from prefopt.compare import final_metrics
from prefopt.rundir import read_metrics

BETAS = ("loss.beta", "loss.beta_chosen", "loss.beta_rejected")  # always shown: the β sweeps' columns
METRICS = ("loss", "rewards/accuracies", "rewards/margins", "3d/drop_ratio", "3d/chosen_below_ref_frac",
           "3d/unseen_logp", "eval/loss", "eval/rewards/accuracies")


def flat(tree: dict, prefix: str = "") -> dict:
    """A nested recipe as {dotted.key: value}."""
    out = {}
    for k, v in tree.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def best_of(rows: list[dict], metric: str, mode: str) -> tuple[float, int]:
    """(best value, its step) of `metric` over a run's logged rows; nan when it was never logged."""
    seen = [(r[metric], r["step"]) for r in rows if metric in r]
    if not seen:
        return float("nan"), -1
    pick = max if mode == "max" else min
    return pick(seen, key=lambda vs: vs[0])


def collect(root: Path, metric: str | None = None, mode: str = "max") -> tuple[list[dict], list[str]]:
    """One row per finished run under `root` with its swept keys and the last value of each metric; the keys."""
    runs = sorted(p for p in root.iterdir() if (p / "metrics.jsonl").exists() and (p / "recipe.yaml").exists())
    if not runs:
        sys.exit(f"collect_sweep: no run directories with recipe.yaml and metrics.jsonl under {root}")
    recipes = {run: flat(yaml.safe_load((run / "recipe.yaml").read_text())) for run in runs}
    ignored = ("train.output_dir", "log.name", *BETAS)  # differ by construction, or shown anyway
    swept = sorted(k for k in set().union(*recipes.values()) if k not in ignored and
                   len({repr(r.get(k)) for r in recipes.values()}) > 1)
    swept = [k for k in BETAS if len({repr(r.get(k)) for r in recipes.values()}) > 1] + swept
    metrics = METRICS + ((metric,) if metric and metric not in METRICS else ())
    rows = []
    for run in runs:
        found = final_metrics(run, metrics)
        row = {"run": run.name, **{k.split(".")[-1]: recipes[run].get(k) for k in BETAS},
               **{k: recipes[run].get(k) for k in swept if k not in BETAS}, "steps": found["steps"]}
        row.update({key: float("nan") if found[key] is None else found[key] for key in metrics})
        if metric:
            row[f"best {metric}"], row["best step"] = best_of(read_metrics(run), metric, mode)
        rows.append(row)
    if metric:
        sign = -1 if mode == "max" else 1
        rows.sort(key=lambda r: (r[f"best {metric}"] != r[f"best {metric}"], sign * r[f"best {metric}"]))
    else:
        rows.sort(key=lambda r: tuple(r[_column(k)] if isinstance(r[_column(k)], (int, float)) else repr(r[_column(k)])
                                      for k in swept))
    return rows, [_column(k) for k in swept]


def _column(key: str) -> str:
    """A swept key's column: the β keys by their short names (as the β sweeps always showed them), others whole."""
    return key.split(".")[-1] if key in BETAS else key


def markdown(rows: list[dict]) -> str:
    cols = [c for c in rows[0] if any(r[c] == r[c] for r in rows if isinstance(r[c], float)) or
            not isinstance(rows[0][c], float)]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], swept: list[str], out: Path, metric: str | None) -> None:
    """Each metric against the first swept key (one line per value of the others)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = swept[0] if swept else "run"
    keys = [k for k in ((f"best {metric}",) if metric else ()) + METRICS if any(r.get(k) == r.get(k) for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    lines: dict[str, list] = {}
    for r in rows:
        lines.setdefault(", ".join(f"{k.split('.')[-1]}={r[k]}" for k in swept[1:]), []).append(r)
    for ax, key in zip(axes[0], keys):
        for label, group in lines.items():
            group = sorted(group, key=lambda r: r[x] if isinstance(r[x], (int, float)) else str(r[x]))
            ax.plot([r[x] for r in group], [r[key] for r in group], marker="o", label=label or None)
        numeric = all(isinstance(r[x], (int, float)) and r[x] > 0 for r in rows)
        ax.set(title=key, xlabel=x, xscale="log" if numeric else "linear")
    if len(lines) > 1:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def winner(rows: list[dict], swept: list[str], metric: str) -> str:
    """The best run's overrides as `--set` flags."""
    best = rows[0]
    key = lambda column: f"loss.{column}" if f"loss.{column}" in BETAS else column
    return " ".join(f"--set {key(k)}={best[k]}" for k in swept) + f"   # {metric} {best[f'best {metric}']:.4g} " \
                                                              f"at step {best['best step']} ({best['run']})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--metric", help="rank runs by this logged metric's best evaluation (e.g. eval/accuracy)")
    ap.add_argument("--mode", choices=("max", "min"), default="max", help="whether larger or smaller is better")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    rows, swept = collect(args.root, args.metric, args.mode)
    with (out / "sweep.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.md").write_text(markdown(rows))
    plot(rows, swept, out / "sweep.png", args.metric)
    print(markdown(rows), end="")
    if args.metric:
        print("winner: " + winner(rows, swept, args.metric))
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.md'}, {out / 'sweep.png'}")


if __name__ == "__main__":
    main()
