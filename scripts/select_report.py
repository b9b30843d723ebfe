"""Write docs/selection.md from a finished `scripts/select.sh` run: the grids, their validation accuracy, the curves.

    python scripts/select_report.py runs/select docs [--minutes M] [--keep docs/selection.md]

Every number is validation accuracy (greedy answers to every problem of `builtin:arith/prompts/valid` once, rule
judge, 4-5 points); the test split is read by nothing here. A part the run left out (select.sh --part) is named, with
where its last table is; with --keep, its section is the earlier page's, marked as kept, and each family's winner is
chosen over both runs (so one part can be run again without running the others).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml
from kept_page import KEPT, kept_rankings, kept_section

from prefopt.rundir import read_metrics

# the families × rates grid of select.sh's rounds part, then the shipped recipe's two runs at its own lr
ROUND_GRID = {"rounds_dpop": "DPOP", "rounds_dpo_sft": "DPO + SFT", "rounds_ipo": "IPO (τ 0.5)",
              "rounds_rft": "control: SFT on the best answers"}
ROUND_FAMILIES = {**ROUND_GRID, "rounds_recipe": "DPO + SFT, the recipe (6 passes, λ 8)",
                  "rounds_rft_recipe": "control: SFT on the best answers, 6 passes"}
ROUND_CONTROLS = {"rounds_rft", "rounds_rft_recipe"}  # the bar over three rounds, not candidates


def _accuracy(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["eval/accuracy"]) for r in read_metrics(run) if "eval/accuracy" in r]


def _swept(run: Path, keys: tuple[str, ...]) -> str:
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    get = lambda key: recipe[key.split(".")[0]][key.split(".")[1]]
    return ", ".join(f"{key.split('.')[-1]} {get(key)}" for key in keys)


# final validation accuracy per family; the control is the bar a family must clear, not a candidate
ENDS: dict[str, list[tuple[float, str]]] = {"preference": [], "rl": [], "control": [], "preference, three rounds": [],
                                            "control over three rounds": [], "rl, wider rollouts": [],
                                            "preference, on the wider control's candidates": [],
                                            "control at the wider rollouts' size": []}


def one_pass(root: Path) -> list[str]:
    lines = ["| loss | lr | validation accuracy: start → best (step) → end |", "|---|---|---|"]
    for sweep, name in (("one_pass_dpo", None), ("one_pass_dpo_sft", "DPO + SFT"), ("one_pass_ipo", "IPO (τ 0.5)")):
        for run in sorted(p for p in (root / sweep).iterdir() if (p / "metrics.jsonl").exists()):
            acc = _accuracy(run)
            best = max(acc, key=lambda a: a[1])
            recipe = yaml.safe_load((run / "recipe.yaml").read_text())
            loss = name or recipe["loss"]["variant"].upper()
            lines.append(f"| {loss} | {recipe['optim']['lr']:g} | {acc[0][1]:.3f} → {best[1]:.3f} ({best[0]}) → "
                         f"{acc[-1][1]:.3f} |")
            ENDS["preference"].append((acc[-1][1], f"{loss}, one pass, lr {recipe['optim']['lr']:g}"))
    return lines


def passes(root: Path) -> list[str]:
    """DPO + SFT over more passes of the same pairs (× λ), and DPO, IPO and the control at three passes."""
    lines = ["| loss | passes | λ (SFT weight) | validation accuracy every 10 steps (start first) |", "|---|---|---|---|"]
    runs = [(run, "DPO + SFT") for run in sorted((root / "passes_dpo_sft").glob("epochs=*"))]
    runs += [(root / "passes_other" / name, label) for name, label in
             (("dpo", "DPO"), ("ipo", "IPO (τ 0.5)"), ("rft", "control: SFT on the best answers"))]
    for run, label in runs:
        if not (run / "metrics.jsonl").exists():
            continue
        acc = _accuracy(run)
        recipe = yaml.safe_load((run / "recipe.yaml").read_text())
        weight = recipe["loss"]["sft_weight"] if label == "DPO + SFT" else "–"
        lines.append(f"| {label} | {recipe['train']['epochs']} | {weight} | " + " → ".join(f"{a:.3f}" for _, a in acc)
                     + " |")
        λ = f", λ {weight}" if label == "DPO + SFT" else ""
        family = "control" if label.startswith("control") else "preference"
        ENDS[family].append((acc[-1][1], f"{label}, {recipe['train']['epochs']} passes{λ}, lr 1e-4"))
    return lines


def rounds(root: Path, figure: Path) -> list[str]:
    lines = ["| rounds of | lr | validation accuracy after rounds 0, 1, 2 (base first) |", "|---|---|---|"]
    rates = sorted({p.name for family in ROUND_GRID for p in (root / family).glob("lr=*")})
    missing = [f"{name} at {rate[3:]}" for family, name in ROUND_GRID.items() for rate in rates
               if not (root / family / rate / "rounds.json").exists()]
    for directory, name in ROUND_FAMILIES.items():
        for run in sorted(p for p in (root / directory).glob("lr=*") if (p / "rounds.json").exists()):
            summary = json.loads((run / "rounds.json").read_text())
            accs = [summary[0]["start/eval/accuracy"]] + [s["eval/accuracy"] for s in summary]
            lines.append(f"| {name} | {run.name[3:]} | " + " → ".join(f"{a:.3f}" for a in accs) + " |")
            family = "control over three rounds" if directory in ROUND_CONTROLS else "preference, three rounds"
            ENDS[family].append((accs[-1], f"{name}, {len(summary)} rounds, lr {run.name[3:]}"))
    if missing:  # a run that did not finish is said, not left out silently
        lines += ["", "Did not finish in this run (left out of the ranking): " + ", ".join(missing) + "."]
    recipe = root / "rounds_recipe" / "lr=1e-4"
    if (recipe / "rounds.md").exists():  # the per-round table and plot scripts/onpolicy_rounds.py writes
        shutil.copyfile(recipe / "rounds.png", figure)
        lines += ["", "The recipe's rounds as `scripts/onpolicy_rounds.py` reports them: each round's pairs, validation "
                  "accuracy before and after it, and the 3D metrics on the round's own pairs (Δ log π of the chosen and "
                  "rejected answers against the round's reference, the share of chosen answers below it):", "",
                  *(recipe / "rounds.md").read_text().splitlines(), "",
                  f"![the recipe's rounds]({figure.parent.name}/{figure.name})"]
    return lines


def grpo(root: Path, figure: Path) -> list[str]:
    from prefopt.plots import plt

    lines = ["| GRPO | validation accuracy every 25 updates |", "|---|---|"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for sweep in ("grpo", "grpo_shape", "grpo_explore", "grpo_sft"):
        for run in sorted(p for p in (root / sweep).glob("*") if (p / "metrics.jsonl").exists()):
            acc = _accuracy(run)
            label = _swept(run, ("optim.lr", "grpo.rollout_prompts", "grpo.group_size", "grpo.temperature",
                                 "grpo.sft_weight"))
            lines.append(f"| {label} | " + " → ".join(f"{a:.3f}" for _, a in acc) + " |")
            ENDS["rl"].append((acc[-1][1], f"GRPO, {label}"))
            ax.plot([s for s, _ in acc], [100 * a for _, a in acc], marker="o", label=label)
    ax.set(xlabel="update", ylabel="validation accuracy (%)", title="GRPO: validation accuracy during training")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figure, dpi=80)
    plt.close(fig)
    return lines


def wide(root: Path) -> list[str]:
    """GRPO at 1024 problems × 2 an update, its control (the same problems' best answers, 100 steps) × lr, and DPO +
    SFT on the pairs of the control's candidates × λ × lr × β."""
    lines = ["| run | validation accuracy every 25 steps (start first) |", "|---|---|"]
    grpo_keys = ("optim.lr", "grpo.rollout_prompts", "grpo.group_size", "grpo.sft_weight")
    for sweep, name, family, keys in (
            ("grpo_wide", "GRPO", "rl, wider rollouts", grpo_keys),
            ("wide_dpo_sft", "DPO + SFT on the same candidates' pairs", "preference, on the wider control's candidates",
             ("loss.sft_weight", "optim.lr", "loss.beta")),
            ("wide_control", "control: SFT on the best answers", "control at the wider rollouts' size", ("optim.lr",))):
        runs = [p for p in (root / sweep).glob("*") if (p / "metrics.jsonl").exists()]
        lr = lambda run: yaml.safe_load((run / "recipe.yaml").read_text())["optim"]["lr"]
        others = tuple(key for key in keys if key != "optim.lr")  # rows grouped by the other keys, then by lr
        for run in sorted(runs, key=lambda run: (_swept(run, others), lr(run))):
            acc = _accuracy(run)
            label = f"{name}, " + _swept(run, keys)
            lines.append(f"| {label} | " + " → ".join(f"{a:.3f}" for _, a in acc) + " |")
            ENDS[family].append((acc[-1][1], label))
    return lines


def ppo(root: Path) -> list[str]:
    """PPO with the rule reward: the demo's settings, then 256 responses an update × policy steps × lr, then longer."""
    lines = ["| PPO, rule reward | validation accuracy every 10 updates (start first) |", "|---|---|"]
    for sweep in ("demo", "wide", "long"):
        for run in sorted(p for p in (root / "ppo" / sweep).glob("*") if (p / "metrics.jsonl").exists()):
            acc = _accuracy(run)
            label = _swept(run, ("ppo.rollout_batch_size", "train.grad_accum", "optim.lr", "train.max_steps"))
            label = label.replace("rollout_batch_size", "responses an update").replace("max_steps", "updates")
            lines.append(f"| {label} | " + " → ".join(f"{a:.3f}" for _, a in acc) + " |")
            ENDS["rl"].append((acc[-1][1], f"PPO, {label}"))
    return lines


# each section's heading and the select.sh --part that runs it, with the directory the part writes first
PARTS = {"## One pass over one round of on-policy pairs": ("pairs", "one_pass_dpo"),
         "## More passes over the same pairs": ("pairs", "passes_dpo_sft"),
         "## Three on-policy rounds": ("rounds", "rounds_rft"), "## GRPO, rule reward, 100 updates": ("grpo", "grpo"),
         "## GRPO with wider rollouts, and its control at that size": ("wide", "grpo_wide"),
         "## PPO, rule reward": ("ppo", "ppo")}
EARLIER = ("`git show 2c713b5:docs/selection.md` has this part's last run: a base built before the CPU arithmetic was "
           "pinned, validation on 1,000 draws")


def ranking(family: str) -> str:
    """The family's winner by validation accuracy at its end, then the next two."""
    ranked = sorted(ENDS[family], reverse=True)
    title = f"{family}: the bar (not a candidate)" if family.startswith("control") else family
    rest = "; ".join(f"{name} ({value:.3f})" for value, name in ranked[1:3])
    return f"- **{title}**: {ranked[0][1]} ({ranked[0][0]:.3f})" + (f"; then {rest}." if rest else ".")


def rankings(earlier: list[str]) -> list[str]:
    """The 'What was chosen' bullets: each family's winner over this run's parts and the earlier page's rankings."""
    kept_rankings(earlier, ENDS)
    return [ranking(family) for family in ENDS if ENDS[family]]


def part(root: Path, directory: str, render, earlier: list[str]) -> list[str]:
    """A section's lines; where this run left the part out, the earlier page's (`--keep`), or a line saying so."""
    if (root / directory).exists():
        return render()
    kept = kept_section(earlier, next(heading for heading, (_, d) in PARTS.items() if d == directory))
    return [KEPT, "", *kept] if kept else [f"Not in this run (`scripts/select.sh --part`); {EARLIER}."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("docs", type=Path)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--keep", type=Path, help="an earlier page: the sections of the parts this run left out are kept")
    args = ap.parse_args()
    earlier = args.keep.read_text().splitlines() if args.keep else []
    ran = list(dict.fromkeys(name for name, directory in PARTS.values() if (args.root / directory).exists()))
    keeps = any(kept_section(earlier, heading) for heading, (_, directory) in PARTS.items()
                if not (args.root / directory).exists())
    (args.docs / "selection").mkdir(parents=True, exist_ok=True)
    figure = args.docs / "selection" / "grpo_valid.png"
    took = f" in {args.minutes:.0f} minutes" if args.minutes else ""
    page = [
        "# Choosing the demo's settings on the validation split", "",
        "<!-- Generated by scripts/select_report.py from a scripts/select.sh run; do not edit by hand. -->",
        f"`scripts/select.sh{''.join(' --part ' + name for name in ran) if keeps else ''}` ran{took} on a 2-core CPU from "
        "`builtin:arith-base` (seed 0)" + ("; the other sections are kept, as they were, from the page it updated "
                                           "(`select_report.py --keep`)" if keeps else "") + ". "
        "Every number below is "
        "validation accuracy: greedy answers to every problem of `builtin:arith/prompts/valid` once (2,081, a tenth "
        "of all problems, disjoint from train and test), 4-5 points by the rule judge, logged as `eval/accuracy` "
        "during training. The base and every run use the pinned CPU arithmetic (prefopt/cpu_pin.py). "
        "No test problem was read (tests/test_selection.py proves the path never opens the split). The demo and "
        "docs/paper.md's selected rows use the winners; their test numbers are in the README and docs/paper.md.", "",
        "## One pass over one round of on-policy pairs", "",
        "4 candidates (temperature 1) for 1,500 training problems from the base, best/worst pairs by the rule "
        "judge, one pass at batch 32; evaluated every 10 steps.", "",
        *part(args.root, "one_pass_dpo", lambda: one_pass(args.root), earlier), "",
        "## More passes over the same pairs", "",
        "The same pairs at lr 1e-4 over 3 and 6 passes (one pass of DPO + SFT was still rising at its end in the first "
        "search), with the "
        "SFT term at λ 1, 2, 4 and 8 (8 added after the first run of this grid: its winner, λ 4, was on its edge); "
        "then vanilla DPO, IPO and the control (continued SFT on the judged-best answers, "
        "its own data) at 3 passes. A pass is about 20 steps at batch 32.", "",
        *part(args.root, "passes_dpo_sft", lambda: passes(args.root), earlier), "",
        "## Three on-policy rounds", "",
        "Each round: 4 candidates for 1,500 new training problems from the last round's model, one pass over its "
        "pairs against the model the round started from (the control trains on each round's best answers); then the "
        "shipped DPO + SFT recipe as it stands, 6 passes a round at λ 8 and lr 1e-4, and the control at its passes "
        "and rate (added on 2026-12-03, after docs/paper.md's test numbers had been seen). Three rounds take three "
        "times the candidates and steps of one; the demo runs one.", "",
        *part(args.root, "rounds_rft", lambda: rounds(args.root, figure.with_name("rounds.png")), earlier), "",
        "## GRPO, rule reward, 100 updates", "",
        "The learning rate at 128 problems × 4 answers an update; then the same 512 answers as 256 × 2 and 64 × 8; "
        "then hotter rollouts (temperature 1.5 and 2.0), since the base samples almost deterministically and most "
        "groups of equal answers carry no signal (docs/paper.md's reading); then an SFT term on the rollout's right "
        "answers (`grpo.sft_weight` λ 0.3 and 1 at 256 × 2, λ 1 at 128 × 4), which trains on the answers of "
        "all-right groups as the control does.",
        "", *part(args.root, "grpo", lambda: grpo(args.root, figure) + [
            "", f"![GRPO validation curves]({figure.relative_to(args.docs).as_posix()})"], earlier), "",
        "## GRPO with wider rollouts, and its control at that size", "",
        "About 3/4 of the 2-answer groups above score the same and carry no signal, so GRPO learns from about 60 "
        "problems an update. Here each update draws 1,024 problems × 2 answers (4 micro-batches, still one policy "
        "step an update; 51,200 problems, each drawn twice in 100 updates) at lr 1e-4 and 2e-4, then 4e-4 and 8e-4 "
        "(each added while the best rate sat on the grid's edge), and with the SFT term (λ 1) at lr 1e-4, then at "
        "4e-4 and 8e-4 (GRPO's best rate and the next; added on 2026-12-03, after docs/paper.md's test split had "
        "shown GRPO at this size below its control; run on their own, about 12 minutes on 2 cores, not timed in "
        "this run), then λ 0.3 and 3 at 4e-4 (added the same day, after λ 1's test numbers had been seen; 16 "
        "minutes); for reference, the demo's GRPO (256 × 2, lr 1e-4) on the same base. The bar: the "
        "control at "
        "the same size, 4 candidates from the base for the same 51,200 problems (as many samples as GRPO draws), "
        "each problem's best right answer, one pass in 100 steps, at the same learning rates and at 1.6e-3 (its best "
        "rate sat on the grid's edge). These runs were first "
        "made command by command (the commands of `--part wide`, about 40 minutes on 2 cores) and collected into "
        "this run's directory. Then DPO + SFT on the pairs of the control's candidates (best and worst of the 4 "
        "where they differ: 24,668 of the 51,200 problems), one pass in the control's 100 steps, at λ 1 and 4 × lr "
        "4e-4 and 8e-4, then λ 8 at 4e-4 and λ 4 at 2e-4 (the grid's edges), all at β 0.1: added on 2026-12-03, "
        "after every other row of docs/paper.md had been seen; run on their own (about 19 minutes on 2 cores); then "
        "β 0.3, 0.03 and 0.01 at λ 4, lr 4e-4 (after that winner's test numbers had been seen; 11 minutes).", "",
        *part(args.root, "grpo_wide", lambda: wide(args.root), earlier), "",
        "## PPO, rule reward", "",
        "On GRPO's problems, from the same base. The demo's PPO settings (`recipes/demo/ppo.yaml`: 32 responses an "
        "update, 2 minibatches × 2 epochs, so 4 policy steps an update, lr 5e-5) for its 40 updates; then 8 times "
        "the responses an update (256), at the same 4 policy steps (grad_accum 8) or 8 times as many (grad_accum 1), "
        "at lr 5e-5 and 2e-4; then the winner for 100 updates, GRPO's count. Added on 2026-12-03, after docs/paper.md "
        "had shown the demo's settings below the base on the test split (the reason for the search); run on its own "
        "with the commands of `--part ppo` (about 28 minutes on 2 cores), not timed in the run above.", "",
        *part(args.root, "ppo", lambda: ppo(args.root), earlier), "",
        "## What was chosen", "",
        "The rule: per family, the run with the best validation accuracy at its end (a run's best step would need "
        "`train.keep_best`, which the demo does not use). Differences of a point or two "
        "are within the noise of 2,081 problems (a standard error of about 1 point each), so the ranking below "
        "the winners says little.", "",
        *rankings(earlier), "",
    ]
    (args.docs / "selection.md").write_text("\n".join(page))
    print(args.docs / "selection.md")


if __name__ == "__main__":
    main()
