"""docs/paper.md itself: the reading (sentences built from the summaries), the figures and the page around the
tables and claims of prefopt/experiments/paper_report.py.

    python -m prefopt.experiments.paper_page runs/paper docs --minutes 38     # re-write the page from finished runs
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import yaml

from prefopt.experiments.paper_report import (
    REG_NAMES,
    SCENARIOS,
    SELECTED,
    accuracy_of,
    beats_table,
    claims_table,
    mean_sd,
    stat,
    sweep_of,
    tables,
    verdict,
)


def _onpolicy_settings() -> str:
    """The selected DPO + SFT settings as recipes/demo/onpolicy.yaml holds them (what the runs used)."""
    from prefopt.experiments import REPO

    recipe = yaml.safe_load((REPO / "recipes/demo/onpolicy.yaml").read_text())
    passes = recipe["train"]["epochs"]
    return (f"{'one pass' if passes == 1 else f'{passes} passes'} of DPO + SFT (λ {recipe['loss']['sft_weight']:g}, "
            f"lr {recipe['optim']['lr']:.0e})".replace("e-0", "e-"))


def reading(summaries: list[dict]) -> str:
    """What the numbers say about this scale, in sentences built from the same summaries."""
    mean = lambda fn: statistics.mean(fn(s) for s in summaries)
    base = mean(lambda s: accuracy_of(s["base"]))
    runs = {f"scenario {k[-1]}": (lambda s, k=k: s["scenarios"][k]) for k in SCENARIOS}
    runs.update({REG_NAMES[k]: (lambda s, k=k: s["regularisers"][k]) for k in ("dpo_sft", "flex_beta", "ipo", "slic")})
    changes = {name: mean(lambda s, get=get: accuracy_of(get(s))) - base for name, get in runs.items()}
    below = [name for name, change in changes.items() if change < 0]
    rej = lambda k: mean(lambda s: s["scenarios"][k]["logp_rejected_base"])
    dpo_chosen = mean(lambda s: s["scenarios"]["scenario1"]["delta_chosen"])
    order = sorted(SCENARIOS, key=lambda k: -mean(lambda s, k=k: accuracy_of(s["scenarios"][k])))
    pairs_total = lambda s: sum(v for k, v in s["diagnosis"]["pairs"].items() if k.startswith(("right", "both")))
    last_digit = mean(lambda s: s["diagnosis"]["pairs"].get(
        "rejected tokens from the first difference to the end: 2", 0) / max(pairs_total(s), 1))
    in_answer = mean(lambda s: s["diagnosis"]["pairs"].get("differ first in the final answer", 0) /
                     max(pairs_total(s), 1))
    wrong = lambda s: sum(v for k, v in s["diagnosis"]["errors"].items() if k.startswith("wrong"))
    final_only = mean(lambda s: s["diagnosis"]["errors"].get("wrong: working right, final number wrong", 0) /
                      max(wrong(s), 1))
    selected = {name: mean(lambda s, get=get: accuracy_of(get(s))) - base for name, get in SELECTED}
    control = mean(lambda s: accuracy_of(s["paper_control"])) - base
    return "\n".join([
        "## Reading the numbers at this scale", "",
        f"- **What the base gets wrong.** Of its wrong greedy answers, {final_only:.0%} have every step of the "
        "working right and only the final number wrong: the last, unwritten step (add the partial products, or "
        "take the units back off) is where a 4-layer model fails.",
        f"- **What the pairs teach.** Every on-policy pair opposes a right and a wrong answer (the rule judge). "
        f"On {in_answer:.0%} of them chosen and rejected first differ inside the final answer, and on "
        f"{last_digit:.0%} only in its last digit (then the end of the sequence): the shared working cancels in "
        "h = Δ_w − Δ_l, and every gradient lands on a digit or two. Vanilla DPO can raise h by pushing a digit down "
        "in both answers of a pair, since the right digit of one problem is the wrong digit of its neighbour: "
        + (f"its chosen log-prob ends {-dpo_chosen:.2f} nats below the reference here (the paper's Degradation). "
           if dpo_chosen < 0 else
           f"at the paper's small learning rate its chosen log-prob still ends {dpo_chosen:.2f} nats above the "
           "reference here, so the Degradation does not show. ") +
        "On the validation split, the losses that hold the chosen side up (DPO + SFT; DPO-Positive, whose penalty "
        "acts only while the chosen log-prob is below the reference's) did better than vanilla DPO at every "
        "learning rate searched (docs/selection.md).",
        f"- **Paper settings against the base.** {len(below)} of the {len(changes)} DPO-family runs at the paper's "
        "settings (one pass, a small learning rate) end below the base (" +
        ", ".join(f"{n}: {c:+.1f} pp" for n, c in changes.items()) + f"); SFT on the same chosen answers at the same "
        f"settings moves it by {control:+.1f} pp" + (", so at these settings the gain is that of a few small steps "
        "toward the model's own right answers, whatever the loss." if max(abs(c - control) for c in changes.values())
        < 1 else "."),
        "- **Selected settings.** " + ", ".join(f"{n}: {c:+.1f} pp" for n, c in selected.items()) + " against the "
        "base. The base is far from converged (the 1,700-step model the demo can afford; [converged.md](converged.md) "
        "converges it, [scarce.md](scarce.md) fits scarce SFT data), so training on its own right answers already "
        "improves it: that is the control, and the table above says whether each method beats it beyond the spread.",
        f"- **Off-policy rejected answers are already unlikely.** The other model's worst answers start at "
        f"{rej('scenario3'):.2f} nats per token under the base, the policy's own worst at {rej('scenario1'):.2f}. "
        f"Held-out accuracy after DPO orders the scenarios {' > '.join(k[-1] for k in order)}.",
        f"- **Scenarios 1 and 2 are almost the same data here.** On {mean(lambda s: s['same_chosen']):.0%} of the "
        "prompts the policy's best answer is the dataset's solution word for word (the task's solutions have one "
        "fixed form), so the two scenarios differ on few pairs; read their gap against its spread.",
        *_limits(summaries),
        "- **Seeds.** Each seed has its own base, and the bases differ by several points; the claims compare runs "
        "within a seed, so that spread cancels in their statistics.",
    ])


def _limits(summaries: list[dict]) -> list[str]:
    """The diagnosis of the selected runs against their controls: GRPO's signal, DPO + SFT's 3D metrics."""
    rollouts = [s["selected"]["grpo"].get("rollouts") for s in summaries]
    if not all(rollouts):  # summaries written before the rollout statistics were kept
        return []
    over = lambda key: statistics.mean(v for r in rollouts for _, v in r[key])
    last = lambda run, key: [s["selected"][run]["curves"][key][-1][1] for s in summaries]
    chosen, rejected = last("dpo_sft", "eval/3d/delta_chosen"), last("dpo_sft", "eval/3d/delta_rejected")
    grpo_chosen = last("grpo", "eval/3d/delta_chosen")
    return [
        f"- **What limits GRPO here.** Averaged over its logged updates, {over('grpo/zero_std_frac'):.0%} of the "
        "2-answer groups scored the same (no advantage, so no gradient: `grpo/zero_std_frac`), and the rollouts' "
        f"entropy is {over('grpo/entropy'):.2f} nats per token: the SFT base samples almost deterministically, so "
        "most problems give GRPO nothing to compare, while its control trains on every problem's best right answer." +
        _sft_term(summaries),
        "- **The selected DPO + SFT on answers it did not train on.** On scenario 1's pairs (other problems, other "
        f"answers), its Δ log π(chosen) ends at {mean_sd(chosen, '+.2f')} nats and Δ log π(rejected) at "
        f"{mean_sd(rejected, '+.2f')}; GRPO's Δ log π(chosen) there ends at {mean_sd(grpo_chosen, '+.2f')}. " +
        ("The chosen side falls on unseen right answers too (the paper's Degradation, dispersed onto other "
         "problems): the pairs' push on a final digit is a push on the same digit where it is right elsewhere."
         if statistics.mean(chosen) < 0 else "The chosen side holds on unseen right answers."),
    ]


def _sft_term(summaries: list[dict]) -> str:
    """What the SFT term adds to GRPO: its margin over GRPO alone and over the control, in the beats table's terms."""
    gain = lambda run, other: [accuracy_of(s["selected"][run]) - accuracy_of(s["selected"][other]) for s in summaries]
    over_control = gain("grpo_sft", "rft_grpo")
    return (" With the SFT term on the rollout's right answers (all-right groups included), GRPO changes by "
            f"{mean_sd(gain('grpo_sft', 'grpo'), '+.1f')} pp against GRPO alone and "
            f"{mean_sd(over_control, '+.1f')} pp against the control: " +
            ("comparing answers within a group adds to training on the right ones."
             if verdict(over_control)[1] == "holds" else
             "what the term adds is what the control has too, the right answers themselves; comparing answers "
             "within a group adds nothing measurable here."))


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
        f"{stat([s['base'] for s in summaries], 'score45', 100)} % on {settings['eval_problems']} problems "
        f"(per seed: {per_seed_base}). The paper's bases: 32-53 %.",
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
        f"{settings['selected']['prompts']} training problems (`recipes/demo/onpolicy.yaml`); GRPO with the rule "
        f"reward for {settings['selected']['grpo_steps']} updates of 256 problems × 2 (`recipes/demo/grpo.yaml`), and "
        "the same with an SFT term on its right answers (λ 1, 128 problems × 4: `recipes/demo/grpo_sft.yaml`; "
        "validation accuracy on seed 0: 0.344 against GRPO's 0.329 and its control's 0.333, the only setting of the "
        "term searched beyond λ 0.3 and 1 at 256 × 2); PPO with the rule reward (the demo's PPO settings, not "
        "searched). DPO + SFT and GRPO each have a control that trains as long on the same problems' judged-best "
        "answers with plain SFT.",
        f"- **Evaluation**: one greedy answer for each of {settings['eval_problems']} held-out problems (a tenth of "
        "all problems, never in any training set), scored 1-5 by the rule judge (5: right with working, 4: right "
        f"answer only). Figure 4's accuracy is on pairs judged from {settings['heldout_prompts']} held-out prompts.",
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
