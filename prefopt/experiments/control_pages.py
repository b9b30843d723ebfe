"""The against-a-control pages (docs/converged.md, docs/scarce.md): their tables, writing and reading back.

Each page names its runs as (label, summary key) and its comparisons as (label, run, other); the numbers are
held-out 4-5-point accuracy (%) per seed, and a change's verdict is docs/paper.md's rule (`paper_report.verdict`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefopt.experiments.paper_report import accuracy_of, held_out_words, mean_sd, verdict
from prefopt.fsutil import write_atomic


def measured(rows: list[tuple], summaries: list[dict]) -> list[tuple]:
    """The (label, run, ...) rows whose runs every summary holds: a page re-written from a run made before a row was
    added to its harness leaves that row out."""
    return [row for row in rows if all(key in summary for summary in summaries for key in row[1:])]


def has(summaries: list[dict], run: str) -> bool:
    """Whether every seed's summary holds `run` (a run added to a harness after a page's run is not in it)."""
    return all(run in summary for summary in summaries)


def accuracy_table(summaries: list[dict], runs: list[tuple[str, str]]) -> list[str]:
    """One row per run: its accuracy on each seed, then mean ± sd."""
    lines = [f"| model | {_seed_columns(summaries)} | mean ± sd |", "|" + "---|" * (len(summaries) + 2)]
    for label, key in runs:
        values = [accuracy_of(s[key]) for s in summaries]
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {mean_sd(values)} |")
    return lines


def changes_table(summaries: list[dict], changes: list[tuple[str, str, str]]) -> list[str]:
    """One row per comparison: run minus other on each seed (pp), mean ± sd and the verdict."""
    lines = [f"| change (pp) | {_seed_columns(summaries)} | mean ± sd | verdict |",
             "|" + "---|" * (len(summaries) + 3)]
    for label, run, other in changes:
        values = [accuracy_of(s[run]) - accuracy_of(s[other]) for s in summaries]
        ms, held = verdict(values)
        lines.append(f"| {label} | " + " | ".join(f"{v:+.1f}" for v in values) + f" | {ms} | **{held}** |")
    return lines


def replication_table(samples: list[tuple[str, list[dict]]], changes: list[tuple[str, str, str]]) -> list[str]:
    """One row per comparison, one (mean ± sd, verdict) pair of columns per sample of bases (a harness run), then
    all of them pooled: whether a verdict survives other bases."""
    pooled = [summary for _, summaries in samples for summary in summaries]
    columns = [*samples, (f"together ({len(pooled)} bases)", pooled)]
    lines = ["| change (pp) | " + " | ".join(f"{name}: mean ± sd | verdict" for name, _ in columns) + " |",
             "|" + "---|" * (2 * len(columns) + 1)]
    for label, run, other in changes:
        cells = ["{} | **{}**".format(*change(summaries, run, other)) for _, summaries in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def change(summaries: list[dict], run: str, other: str) -> tuple[str, str]:
    """(mean ± sd, verdict) of run minus other over the seeds."""
    return verdict([accuracy_of(s[run]) - accuracy_of(s[other]) for s in summaries])


def validation_table(summaries: list[dict], runs: list[tuple[str, str]], every: int) -> list[str]:
    """Validation accuracy during training, one row per run and seed (the start first)."""
    lines = [f"| run | seed | every {every} steps (start first) |", "|---|---|---|"]
    for s in summaries:
        for label, key in runs:
            lines.append(f"| {label} | {s['seed']} | " + " → ".join(f"{v:.3f}" for _, v in s[key]["valid"]) + " |")
    return lines


def _seed_columns(summaries: list[dict]) -> str:
    return " | ".join(f"seed {s['seed']}" for s in summaries)


def loss_points(summary: dict) -> list:
    """A few points of the base's loss curve: the steps nearest to a fifth, two fifths, ... of its length."""
    curve = summary["base_loss"]
    if not curve:
        return []
    last = curve[-1][0]
    steps = sorted({min(curve, key=lambda point: abs(point[0] - last * k / 5))[0] for k in range(1, 6)})
    return [point for point in curve if point[0] in steps]


def write(name: str, text: str, summaries: list[dict], sizes: dict, docs: Path) -> Path:
    """Write <docs>/<name>.md and the summaries it was made from (<docs>/<name>/summaries.json); the page's path."""
    docs.mkdir(parents=True, exist_ok=True)
    page = docs / f"{name}.md"
    write_atomic(page, text)
    write_atomic(docs / name / "summaries.json", json.dumps({"sizes": sizes, "seeds": summaries}, indent=1))
    return page


def rewrite(name: str, markdown, argv=None) -> None:
    """`RUNS DOCS [--minutes M]`: re-write <DOCS>/<name>.md from a finished harness run directory."""
    ap = argparse.ArgumentParser(description=f"re-write docs/{name}.md from finished runs")
    ap.add_argument("runs", type=Path)
    ap.add_argument("docs", type=Path)
    ap.add_argument("--minutes", type=float, default=0.0)
    args = ap.parse_args(argv)
    sizes = json.loads((args.runs / "sizes.json").read_text())  # what the harness ran them with
    summaries = [json.loads(path.read_text()) for path in sorted(args.runs.glob("seed*/summary.json"))]
    print(write(name, markdown(summaries, sizes, args.minutes, False), summaries, sizes, args.docs))


def evaluation(sizes: dict) -> str:
    """The page's evaluation bullet: the held-out test set (docs/paper.md's) and the validation during training."""
    return (f"- **Evaluation**: one greedy answer for {held_out_words(sizes['eval_problems'])}, rule judge, 4-5 "
            "points (docs/paper.md's); validation accuracy (`builtin:arith/prompts/valid`) every "
            f"{sizes['eval_every']} steps during training.")
