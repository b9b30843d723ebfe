"""Run the toy recipes through prefopt's own loop, check the paper's claims, and write figures plus docs/toy.md.

`python -m prefopt.experiments.toy_report --seeds 0 1 2` (what scripts/toy_figures.sh runs). Tests call `run_all` and
`claims` directly, so the numbers in docs/toy.md and the asserted claims come from the same code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prefopt.experiments import REPO
from prefopt.plots import plt, series

# label -> (recipe, command)
RUNS = {
    "scenario1": ("recipes/toy/scenario1.yaml", "dpo"),
    "scenario2": ("recipes/toy/scenario2.yaml", "dpo"),
    "scenario3": ("recipes/toy/scenario3.yaml", "dpo"),
    "scenario4": ("recipes/toy/scenario4.yaml", "dpo"),
    "flex_beta": ("recipes/toy/flex_beta.yaml", "dpo"),
    "dpo_sft": ("recipes/toy/dpo_sft.yaml", "dpo"),
    "ipo": ("recipes/toy/ipo.yaml", "ipo"),
    "slic": ("recipes/toy/slic.yaml", "slic"),
}


def run_all(seed: int, out_root: Path, labels=None, root: Path = REPO) -> dict[str, list[dict]]:
    """Train every toy recipe (in this process) with `train.seed=seed`; label -> metrics rows."""
    from prefopt.loop import train
    from prefopt.objectives import OBJECTIVES
    from prefopt.recipe import load_recipe
    from prefopt.rundir import read_metrics

    out = {}
    for label in labels or RUNS:
        recipe, cmd = RUNS[label]
        r = load_recipe(root / recipe, [f"train.seed={seed}", f"train.output_dir={out_root / f'{label}-seed{seed}'}",
                                        "log.console=false"])
        out[label] = read_metrics(train(r, OBJECTIVES[cmd]))
    return out


def _seed_worker(seed: int, runs: str, root: str) -> dict:
    import os

    import torch

    from prefopt.engine import DIST_VARS

    for k in DIST_VARS:
        os.environ.pop(k, None)  # each worker is its own world of one
    torch.set_num_threads(1)  # a 64-unit MLP: threads cost more than they give, and seeds run side by side
    res = run_all(seed, Path(runs), root=Path(root))
    return {"res": res, "claims": claims(res)}


def run_seeds(seeds: list[int], runs: Path, root: Path = REPO, jobs: int = 2) -> dict[int, dict]:
    """run_all + claims for each seed, `jobs` seeds at a time in separate processes; seed -> {res, claims}."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
        futures = {s: pool.submit(_seed_worker, s, str(runs), str(root)) for s in seeds}
        return {s: f.result() for s, f in futures.items()}


def _v(rows, key):
    return series(rows, key)[1] or [float("nan")]  # e.g. SLiC has no reference, hence no drop ratio


def _at(rows, key, step):
    return next(r[key] for r in rows if r["step"] == step)


def summary(rows: list[dict]) -> dict[str, float]:
    """Key numbers of one run: start/peak/end probabilities and the gradient log-ratio at start and end."""
    pc, pr, pu = _v(rows, "probs/chosen"), _v(rows, "probs/rejected"), _v(rows, "probs/unseen")
    ratio = _v(rows, "3d/log_grad_ratio")
    return {"chosen_start": pc[0], "chosen_peak": max(pc), "chosen_peak_step": rows[pc.index(max(pc))]["step"],
            "chosen_end": pc[-1], "rejected_start": pr[0], "rejected_end": pr[-1], "unseen_start": pu[0],
            "unseen_peak": max(pu), "unseen_end": pu[-1], "other_end": _v(rows, "probs/other")[-1],
            "log_grad_ratio_first": ratio[0], "log_grad_ratio_end": ratio[-1],
            "drop_ratio_end": _v(rows, "3d/drop_ratio")[-1]}


def claims(res: dict[str, list[dict]]) -> dict[str, bool]:
    """The paper's toy claims (issue #4), evaluated on prefopt's own output."""
    s = {k: summary(v) for k, v in res.items()}
    at_t = lambda label, key: s[label][key]
    out = {
        "P1 rejected log-prob falls faster than chosen rises (drop_ratio > 1, vanilla, all scenarios)":
            all(s[f"scenario{i}"]["drop_ratio_end"] > 1 for i in range(1, 5)),
        "P1 gradient ratio |dL/dpi_l|/|dL/dpi_w| grows over training (all scenarios)":
            all(s[f"scenario{i}"]["log_grad_ratio_end"] > s[f"scenario{i}"]["log_grad_ratio_first"] for i in range(1, 5)),
        "P2 off-policy chosen (scenarios 2, 4) peaks, then falls":
            all(s[f"scenario{i}"]["chosen_peak"] > s[f"scenario{i}"]["chosen_end"] + 1e-3 for i in (2, 4)),
        "P3 unseen mass (responses 9-10) ends higher than it started (all scenarios)":
            all(s[f"scenario{i}"]["unseen_end"] > s[f"scenario{i}"]["unseen_start"] for i in range(1, 5)),
        "P3' mass outside prompt i's pairs (9-10 + other prompts' chosen) ends higher than it started":
            all(s[f"scenario{i}"]["unseen_end"] + s[f"scenario{i}"]["other_end"] >
                s[f"scenario{i}"]["unseen_start"] + _v(res[f"scenario{i}"], "probs/other")[0] for i in range(1, 5)),
        "Scenario 1 has the highest peak optimal-response probability":
            all(s["scenario1"]["chosen_peak"] >= s[f"scenario{i}"]["chosen_peak"] for i in range(2, 5)),
        "Scenario 1 has the smallest final unseen mass":
            all(s["scenario1"]["unseen_end"] < s[f"scenario{i}"]["unseen_end"] for i in range(2, 5)),
        "flex-beta (beta- < beta+) leaves more rejected probability than vanilla at T = 100 (during the drop)":
            _at(res["flex_beta"], "probs/rejected", 100) > _at(res["scenario1"], "probs/rejected", 100),
        "flex-beta (beta- < beta+) leaves more rejected probability than vanilla at T = 600 (the end)":
            at_t("flex_beta", "rejected_end") > at_t("scenario1", "rejected_end"),
        "flex-beta (beta- < beta+) ends with a higher chosen probability than vanilla":
            at_t("flex_beta", "chosen_end") > at_t("scenario1", "chosen_end"),
        "DPO + SFT ends with a higher chosen probability than vanilla":
            at_t("dpo_sft", "chosen_end") > at_t("scenario1", "chosen_end"),
        "IPO shows a milder rejected drop than vanilla DPO":
            at_t("ipo", "rejected_end") > at_t("scenario1", "rejected_end"),
        "SLiC shows a milder rejected drop than vanilla DPO":
            at_t("slic", "rejected_end") > at_t("scenario1", "rejected_end"),
    }
    return out


def figures(res: dict[str, list[dict]], out_dir: Path) -> dict[str, Path]:
    """Figure 2 (scenario 1 curves and gradients), Figure 3 (four scenarios), and the regulariser comparison."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    rows = res["scenario1"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for key in ("probs/chosen", "probs/rejected", "probs/unseen", "probs/other"):
        a.plot(*series(rows, key), label=key.split("/")[1])
    a.set(title="Scenario 1, vanilla DPO: probabilities", xlabel="step")
    a.legend()
    for key, lab in (("3d/log_grad_chosen", "log|∂L/∂π_w|"), ("3d/log_grad_rejected", "log|∂L/∂π_l|")):
        b.plot(*series(rows, key), label=lab)
    b.set(title="gradient magnitudes (log domain)", xlabel="step")
    b.legend()
    fig.tight_layout()
    paths["figure2"] = _save(fig, out_dir / "toy_figure2.png")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
    for i, ax in enumerate(axes, 1):
        for key in ("probs/chosen", "probs/rejected", "probs/unseen", "probs/other"):
            ax.plot(*series(res[f"scenario{i}"], key), label=key.split("/")[1])
        ax.set(title=f"scenario {i}", xlabel="step")
    axes[0].legend()
    fig.tight_layout()
    paths["figure3"] = _save(fig, out_dir / "toy_figure3.png")
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for label in ("scenario1", "flex_beta", "dpo_sft", "ipo", "slic"):
        name = "vanilla DPO" if label == "scenario1" else label
        for ax, key in zip(axes, ("probs/chosen", "probs/rejected", "probs/unseen")):
            ax.plot(*series(res[label], key), label=name)
            ax.set(title=key + " (scenario 1)", xlabel="step")
    axes[0].legend()
    fig.tight_layout()
    paths["regularisers"] = _save(fig, out_dir / "toy_regularisers.png")
    return paths


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def markdown(per_seed: dict[int, dict], seconds: float) -> str:
    """docs/toy.md: the images, a table of key numbers (first seed), and each claim's verdict for every seed."""
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]["res"]
    lines = ["# The paper's toy model, reproduced with prefopt's own losses", "",
             "Generated by `scripts/toy_figures.sh` (do not edit by hand). Setup: `recipes/toy/` and",
             "`prefopt/toy.py` (initial distributions: `SCENARIOS`). Adam, lr 1e-3, β 0.1, 600 full-batch steps",
             f"of the 64 pairs; seeds {seeds}; {seconds:.0f} s on this machine's CPU.", "",
             "![Figure 2](toy/toy_figure2.png)", "", "![Figure 3](toy/toy_figure3.png)", "",
             "![Regularisers](toy/toy_regularisers.png)", "",
             "## Findings", "",
             "- **Property 1 holds.** The rejected log-prob falls much faster than the chosen one rises, and",
             "  log|∂L/∂π_l| - log|∂L/∂π_w| grows from about 0 to 60-80 nats over training in every scenario.",
             "- **Property 2 holds, and not only off-policy.** The chosen probability peaks and then falls in scenario 2",
             "  on every seed; the fall is largest in scenarios 1 and 3 (peak ≈ 1.0, end 0.54-0.91) once the rejected",
             "  probability has underflowed. Scenario 4 (both start low) peaks at the last step for seed 1.",
             "- **Property 3, as specified (mass on responses 9-10), does not hold.** The unseen mass rises early in",
             "  scenario 2 (0.14 → 0.19-0.21) but then goes to ~0 everywhere. The freed mass goes to the *other prompts'*",
             "  chosen responses, which are never paired with the prompt either: the output layer shares their logits",
             "  across prompts, while responses 9-10 receive no direct gradient (in logit space DPO's gradient is",
             "  -βσ(-z)(e_w - e_l)). Counting both as 'outside the data' (P3'), dispersion holds on seed 0 only.",
             "- **Regularisers.** DPO+SFT, IPO and SLiC keep the chosen probability high and the rejected one far from",
             "  0. Flex-β (β⁻ = β⁺/2) slows the rejected drop during the drop (step 100) and ends with a much higher",
             "  chosen probability than vanilla, but by step 600 its rejected probability is even lower: with Adam the",
             "  step size hardly depends on β⁻, and a smaller β⁻ keeps σ(-z) (and so the push) larger for longer.",
             "- 'Scenario 1 has the smallest final unseen mass' holds, but all four end below 1e-13: not a meaningful",
             "  comparison in this setting.", "",
             f"## Key numbers (seed {seeds[0]})", "",
             "| run | chosen start | chosen peak (step) | chosen end | rejected start | rejected end | unseen start |"
             " unseen peak | unseen end | other end | log grad ratio first → end |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, rows in first.items():
        s = summary(rows)
        lines.append(f"| {label} | {s['chosen_start']:.3f} | {s['chosen_peak']:.3f} ({s['chosen_peak_step']}) | "
                     f"{s['chosen_end']:.3f} | {s['rejected_start']:.3f} | {s['rejected_end']:.2e} | "
                     f"{s['unseen_start']:.3f} | {s['unseen_peak']:.3f} | {s['unseen_end']:.2e} | "
                     f"{s['other_end']:.3f} | {s['log_grad_ratio_first']:.2f} → {s['log_grad_ratio_end']:.2f} |")
    lines += ["", "## Vanilla DPO per scenario and seed", "",
              "'outside' is the mass on responses never paired with the prompt: 9-10 plus the other prompts' chosen.",
              "", "| seed | scenario | chosen peak (step) | chosen end | outside start | outside end | unseen peak |",
              "|---|---|---|---|---|---|---|"]
    for seed in seeds:
        for i in range(1, 5):
            rows = per_seed[seed]["res"][f"scenario{i}"]
            s = summary(rows)
            outside0 = rows[0]["probs/unseen"] + rows[0]["probs/other"]
            lines.append(f"| {seed} | {i} | {s['chosen_peak']:.3f} ({s['chosen_peak_step']}) | {s['chosen_end']:.3f} | "
                         f"{outside0:.3f} | {s['unseen_end'] + s['other_end']:.3f} | {s['unseen_peak']:.3f} |")
    lines += ["", "## The paper's claims, checked on this output", "",
              "| claim | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for claim in per_seed[seeds[0]]["claims"]:
        lines.append(f"| {claim} | " + " | ".join("holds" if per_seed[s]["claims"][claim] else "**does not hold**"
                                                  for s in seeds) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", default="runs/toy")
    ap.add_argument("--docs", default=str(REPO / "docs"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    per_seed = run_seeds(args.seeds, Path(args.runs))
    docs = Path(args.docs)
    figures(per_seed[args.seeds[0]]["res"], docs / "toy")
    (docs / "toy.md").write_text(markdown(per_seed, time.perf_counter() - t0))
    for claim, ok in per_seed[args.seeds[0]]["claims"].items():
        print(f"{'holds' if ok else 'DOES NOT HOLD':>14}  {claim}")
    print(f"wrote {docs / 'toy.md'} and {docs / 'toy'}/*.png")


if __name__ == "__main__":
    main()
