"""Turn the per-seed summaries of `prefopt.paper` into docs/paper.md: tables beside the paper's, figures, claims.

Every claim's statistic and threshold is fixed here, before any run: a claim "holds" on a seed when its statistic
is above zero. The page also stores the summaries it was written from (docs/paper/summaries.json), so a test can
check that the claims table on the page is what this code computes from them.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

SCENARIOS = {  # Table 4: where chosen and rejected come from (prefopt/paper.py runs them)
    "scenario1": ("policy_best", "policy_worst"),
    "scenario2": ("reference", "policy_worst"),
    "scenario3": ("policy_best", "other"),
    "scenario4": ("reference", "other"),
}
# The paper's numbers. Table 1 (Baichuan2-13B) log-probs: (chosen base, rejected base, chosen after, rejected after).
PAPER_T1 = {"scenario1": (-0.9181, -0.9393, -0.9681, -0.9982), "scenario2": (-1.6776, -0.9238, -1.6265, -1.2293),
            "scenario3": (-0.9461, -1.7110, -0.8786, -1.8848), "scenario4": (-1.7468, -1.7110, -1.6617, -1.8265)}
# Table 2 (Baichuan2-13B, average of MATH* and SuperCLUE): 5-point and 4-5-point rates.
PAPER_T2 = {"base": (32.2, 42.5), "scenario1": (37.1, 47.1), "scenario2": (32.9, 43.4), "scenario3": (28.3, 41.6),
            "scenario4": (26.8, 37.7)}
# Table 10 (Baichuan2-33B on MATH*): 5-point and 4-5-point rates.
PAPER_T10 = {"dpo": (29.9, 37.5), "flex_beta": (30.1, 38.0), "ipo": (30.0, 37.7), "slic": (29.3, 38.7)}
REG_NAMES = {"dpo": "DPO (scenario 1)", "dpo_sft": "DPO + SFT", "flex_beta": "flex-β (β⁻ = 0.05)", "ipo": "IPO",
             "slic": "SLiC"}


def _acc(entry: dict) -> float:
    return 100 * entry["score45"]


def _roughness(curve: list) -> float:
    """Mean absolute change of held-out accuracy between consecutive evaluations after step 0 (pp).

    Step 0 is left out: there the policy is its reference, every implicit reward is 0 and DPO's accuracy is 0 by
    construction (a tie is not a win), so the first step would count as a 50-point "fluctuation".
    """
    values = [100 * v for step, v in curve if step > 0]
    return statistics.mean(abs(b - a) for a, b in zip(values, values[1:])) if len(values) > 1 else 0.0


def _sweep(summary: dict) -> dict[float, float]:
    """β⁻ -> held-out 4-5-point rate; β⁻ = β⁺ = 0.1 is scenario 1's vanilla DPO run."""
    points = {0.1: _acc(summary["scenarios"]["scenario1"])}
    points.update({float(b): _acc(entry) for b, entry in summary["sweep"].items()})
    return points


def _best_beta(summary: dict) -> float:
    points = _sweep(summary)
    return max(points, key=points.get)


# (claim as the paper states it, statistic whose sign decides it, function of one seed's summary).
CLAIMS = [
    ("On-policy pairs (scenario 1) give the best held-out accuracy (Table 2)",
     "4-5-pt rate of scenario 1 minus the best of scenarios 2-4 (pp)",
     lambda s: _acc(s["scenarios"]["scenario1"]) - max(_acc(s["scenarios"][k]) for k in SCENARIOS if k != "scenario1")),
    ("DPO on on-policy pairs improves on the base (Table 2)",
     "4-5-pt rate of scenario 1 minus the base's (pp)",
     lambda s: _acc(s["scenarios"]["scenario1"]) - _acc(s["base"])),
    ("Scenario 1 has the slowest decline of the rejected log-prob (Table 1)",
     "change of per-token log π(rejected) in scenario 1 minus the largest change among scenarios 2-4",
     lambda s: _change(s, "scenario1") - max(_change(s, k) for k in SCENARIOS if k != "scenario1")),
    ("Vanilla DPO lowers the chosen log-prob too (Degradation, §3)",
     "minus the final log π(chosen) - log π_ref(chosen) of DPO on scenario 1 (nats per sequence)",
     lambda s: -s["scenarios"]["scenario1"]["delta_chosen"]),
    ("DPO + SFT keeps the chosen log-prob above the reference (§3.3)",
     "final log π(chosen) - log π_ref(chosen) of DPO + SFT (nats per sequence)",
     lambda s: s["regularisers"]["dpo_sft"]["delta_chosen"]),
    ("Flex-β (β⁻ < β⁺) beats vanilla DPO (Table 10)",
     "4-5-pt rate of flex-β (β⁻ 0.05) minus vanilla DPO's (pp)",
     lambda s: _acc(s["regularisers"]["flex_beta"]) - _acc(s["scenarios"]["scenario1"])),
    ("Lowering β⁻ first helps, then hurts (Figure 9)",
     "1 if the best β⁻ is strictly inside the swept range, else -1",
     lambda s: 1.0 if min(_betas(s)) < _best_beta(s) < max(_betas(s)) else -1.0),
    ("Reward-model training is more stable than DPO (Figure 4)",
     "mean absolute change of held-out pair accuracy between evaluations after step 0: DPO's minus the RM's (pp)",
     lambda s: _roughness(s["stability"]["dpo"]) - _roughness(s["stability"]["rm"])),
    ("RLHF-PPO is ahead of DPO (Table 3)",
     "4-5-pt rate of PPO minus DPO's on scenario 1 (pp)",
     lambda s: _acc(s["ppo"]) - _acc(s["scenarios"]["scenario1"])),
]


# Does each method improve its base (held-out 4-5-point rate, pp)? And do the selected ones beat their control?
BEATS = [
    ("DPO, paper settings (scenario 1)", lambda s: s["scenarios"]["scenario1"]),
    ("DPO + SFT, paper settings", lambda s: s["regularisers"]["dpo_sft"]),
    ("flex-β, paper settings", lambda s: s["regularisers"]["flex_beta"]),
    ("IPO, paper settings", lambda s: s["regularisers"]["ipo"]),
    ("SLiC, paper settings", lambda s: s["regularisers"]["slic"]),
    ("RLHF-PPO, learned reward model", lambda s: s["ppo"]),
    ("PPO, rule reward", lambda s: s["selected"]["ppo_rule"]),
    ("DPO + SFT, on-policy pairs (selected)", lambda s: s["selected"]["dpo_sft"]),
    ("GRPO, rule reward (selected)", lambda s: s["selected"]["grpo"]),
    ("control: continued SFT on the pairs' problems' best answers", lambda s: s["selected"]["rft"]),
    ("control: continued SFT on GRPO's problems' best answers", lambda s: s["selected"]["rft_grpo"]),
]
CONTROLS = [("DPO + SFT beats its control (same problems and steps, SFT on the best answers)", "dpo_sft", "rft"),
            ("GRPO beats its control (same problems, samples and steps, SFT on the best of 4)", "grpo", "rft_grpo")]


def _verdict(values: list[float]) -> tuple[str, str]:
    """(mean ± sd, verdict): a change counts when all seeds agree and the mean is beyond the spread."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    mean, held = statistics.mean(values), sum(v > 0 for v in values)
    verdict = "holds" if held == len(values) and mean > sd else "does not hold" if held == 0 else \
        f"not beyond the spread ({held}/{len(values)} seeds above)"
    return _ms(values, "+.1f"), verdict


def beats_table(summaries: list[dict]) -> str:
    """Per method: held-out 4-5-point rate minus its base's, per seed, and whether it beats the base; then the
    selected methods against their controls."""
    seeds = [s["seed"] for s in summaries]
    lines = ["| method | " + " | ".join(f"seed {k}" for k in seeds) + " | mean ± sd (pp) | beats its base |",
             "|" + "---|" * (len(seeds) + 3)]
    for name, get in BEATS:
        values = [_acc(get(s)) - _acc(s["base"]) for s in summaries]
        ms, verdict = _verdict(values)
        lines.append(f"| {name} | " + " | ".join(f"{v:+.1f}" for v in values) + f" | {ms} | **{verdict}** |")
    lines += ["", "| selected method against its control | " + " | ".join(f"seed {k}" for k in seeds) +
              " | mean ± sd (pp) | verdict |", "|" + "---|" * (len(seeds) + 3)]
    for name, method, control in CONTROLS:
        values = [_acc(s["selected"][method]) - _acc(s["selected"][control]) for s in summaries]
        ms, verdict = _verdict(values)
        lines.append(f"| {name} | " + " | ".join(f"{v:+.1f}" for v in values) + f" | {ms} | **{verdict}** |")
    return "\n".join(lines)


def _change(summary: dict, scenario: str) -> float:
    entry = summary["scenarios"][scenario]
    return entry["logp_rejected"] - entry["logp_rejected_base"]


def _betas(summary: dict) -> list[float]:
    return list(_sweep(summary))


def claims(summaries: list[dict]) -> list[dict]:
    """Each claim's statistic per seed, whether it holds (> 0) on each, and its mean and spread."""
    out = []
    for text, statistic, fn in CLAIMS:
        values = [fn(s) for s in summaries]
        held = sum(v > 0 for v in values)
        verdict = "holds" if held == len(values) else "does not hold" if held == 0 else f"mixed ({held}/{len(values)})"
        out.append({"claim": text, "statistic": statistic, "values": values, "verdict": verdict})
    return out


def claims_table(summaries: list[dict]) -> str:
    """The claims table as it appears on the page."""
    seeds = [s["seed"] for s in summaries]
    head = "| claim (paper) | statistic (holds when > 0) | " + " | ".join(f"seed {k}" for k in seeds) + \
        " | mean ± sd | mean beyond sd | verdict |"
    lines = [head, "|" + "---|" * (len(seeds) + 5)]
    for c in claims(summaries):
        cells = [f"{v:+.2f}" for v in c["values"]]
        sd = statistics.stdev(c["values"]) if len(c["values"]) > 1 else 0.0
        beyond = "yes" if abs(statistics.mean(c["values"])) > sd else "no"
        lines.append(f"| {c['claim']} | {c['statistic']} | " + " | ".join(cells) + f" | {_ms(c['values'], '+.2f')} | "
                     f"{beyond} | **{c['verdict']}** |")
    return "\n".join(lines)


def _ms(values: list, fmt: str = ".1f") -> str:
    if any(v is None for v in values):  # e.g. SLiC's Δ: it has no reference model
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} ± {sd:{fmt.lstrip('+')}}"  # a spread has no sign


def _stat(entries: list[dict], key: str, scale: float = 1.0, fmt: str = ".1f") -> str:
    """mean ± sd over seeds of one number of the entries (one entry per seed)."""
    return _ms([None if e[key] is None else scale * e[key] for e in entries], fmt)


def tables(summaries: list[dict]) -> str:
    """Table 1, Table 2, Table 10 and Table 3 analogues, mean ± sd over seeds, the paper's numbers beside."""
    of = lambda get: [get(s) for s in summaries]  # one entry per seed
    out = ["## Table 1: per-token log-probs of the training pairs, base → after DPO", "",
           "| scenario | chosen: base → DPO | rejected: base → DPO | paper (13B) chosen | paper (13B) rejected |",
           "|---|---|---|---|---|"]
    for k in SCENARIOS:
        runs, p = of(lambda s, k=k: s["scenarios"][k]), PAPER_T1[k]
        logp = lambda key, runs=runs: _stat(runs, key, fmt=".3f")
        out.append(f"| {k[-1]} | {logp('logp_chosen_base')} → {logp('logp_chosen')} | {logp('logp_rejected_base')} → "
                   f"{logp('logp_rejected')} | {p[0]} → {p[2]} | {p[1]} → {p[3]} |")
    out += ["", "## Table 2: held-out accuracy (%, one greedy answer per problem, rule judge)", "",
            "| model | 5 points | 4-5 points | paper (13B) 5 points | paper (13B) 4-5 points |", "|---|---|---|---|---|"]
    rows = [("base", of(lambda s: s["base"]))]
    rows += [(f"DPO, scenario {k[-1]}", of(lambda s, k=k: s["scenarios"][k])) for k in SCENARIOS]
    for (name, runs), paper in zip(rows, PAPER_T2.values()):
        out.append(f"| {name} | {_stat(runs, 'score5', 100)} | {_stat(runs, 'score45', 100)} | {paper[0]} | {paper[1]} |")
    out += ["", "## Table 10: regularisers on scenario 1's pairs", "",
            "| run | 4-5 points (%) | Δ log π(chosen) | Δ log π(rejected) | paper (33B, MATH*) 5 / 4-5 points |",
            "|---|---|---|---|---|"]
    for key, name in REG_NAMES.items():
        runs = of(lambda s, key=key: s["scenarios"]["scenario1"] if key == "dpo" else s["regularisers"][key])
        paper = "{} / {}".format(*PAPER_T10[key]) if key in PAPER_T10 else "not reported"
        out.append(f"| {name} | {_stat(runs, 'score45', 100)} | {_stat(runs, 'delta_chosen', fmt='.2f')} | "
                   f"{_stat(runs, 'delta_rejected', fmt='.2f')} | {paper} |")
    out += ["", "Δ: log π - log π_ref summed over the response, mean over scenario 1's pairs, after training.", "",
            "## Table 3: DPO vs RLHF-PPO (same base; the reward model trained on scenario 1's pairs)", "",
            "| model | 5 points (%) | 4-5 points (%) | paper (33B): mean of its 7 poem and slogan scores |",
            "|---|---|---|---|"]
    for name, runs, paper in (("base", of(lambda s: s["base"]), "0.574"),
                              ("DPO", of(lambda s: s["scenarios"]["scenario1"]), "0.741"),
                              ("RLHF-PPO", of(lambda s: s["ppo"]), "0.806"),
                              ("PPO, rule reward", of(lambda s: s["selected"]["ppo_rule"]), "not in the paper"),
                              ("GRPO, rule reward", of(lambda s: s["selected"]["grpo"]), "not in the paper")):
        out.append(f"| {name} | {_stat(runs, 'score5', 100)} | {_stat(runs, 'score45', 100)} | {paper} |")
    out += ["", "## Selected settings: what improves the base, and its control", "",
            "| run | 5 points (%) | 4-5 points (%) |", "|---|---|---|"]
    for name, get in (("base", lambda s: s["base"]), ("DPO, paper settings", lambda s: s["scenarios"]["scenario1"]),
                      *((n, g) for n, g in BEATS[6:])):
        out.append(f"| {name} | {_stat(of(get), 'score5', 100)} | {_stat(of(get), 'score45', 100)} |")
    curves = [s["selected"]["grpo"].get("train_accuracy") or [] for s in summaries]
    if all(curves):
        out += ["", "GRPO's accuracy on its own rollouts (training problems, rule judge), first logged update → last: " +
                ", ".join(f"seed {i}: {c[0][1]:.3f} (update {c[0][0]}) → {c[-1][1]:.3f} (update {c[-1][0]})"
                          for i, c in enumerate(curves)) + "."]
    return "\n".join(out)


def reading(summaries: list[dict]) -> str:
    """What the numbers say about this scale, in sentences built from the same summaries."""
    mean = lambda fn: statistics.mean(fn(s) for s in summaries)
    base = mean(lambda s: _acc(s["base"]))
    runs = {f"scenario {k[-1]}": (lambda s, k=k: s["scenarios"][k]) for k in SCENARIOS}
    runs.update({REG_NAMES[k]: (lambda s, k=k: s["regularisers"][k]) for k in ("dpo_sft", "flex_beta", "ipo", "slic")})
    changes = {name: mean(lambda s, get=get: _acc(get(s))) - base for name, get in runs.items()}
    below = [name for name, change in changes.items() if change < 0]
    rej = lambda k: mean(lambda s: s["scenarios"][k]["logp_rejected_base"])
    dpo_chosen = mean(lambda s: s["scenarios"]["scenario1"]["delta_chosen"])
    order = sorted(SCENARIOS, key=lambda k: -mean(lambda s, k=k: _acc(s["scenarios"][k])))
    pairs_total = lambda s: sum(v for k, v in s["diagnosis"]["pairs"].items() if k.startswith(("right", "both")))
    last_digit = mean(lambda s: s["diagnosis"]["pairs"].get(
        "rejected tokens from the first difference to the end: 2", 0) / max(pairs_total(s), 1))
    in_answer = mean(lambda s: s["diagnosis"]["pairs"].get("differ first in the final answer", 0) /
                     max(pairs_total(s), 1))
    wrong = lambda s: sum(v for k, v in s["diagnosis"]["errors"].items() if k.startswith("wrong"))
    final_only = mean(lambda s: s["diagnosis"]["errors"].get("wrong: working right, final number wrong", 0) /
                      max(wrong(s), 1))
    selected = {name: mean(lambda s, get=get: _acc(get(s))) - base for name, get in BEATS[6:]}
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
        ", ".join(f"{n}: {c:+.1f} pp" for n, c in changes.items()) + ").",
        "- **Selected settings.** " + ", ".join(f"{n}: {c:+.1f} pp" for n, c in selected.items()) + " against the "
        "base. The base is far from converged (it is the 1,700-step model the demo can afford to build), so "
        "training on its own right answers already improves it: that is the control, and the table above says "
        "whether each method beats it beyond the spread of seeds.",
        f"- **Off-policy rejected answers are already unlikely.** The other model's worst answers start at "
        f"{rej('scenario3'):.2f} nats per token under the base, the policy's own worst at {rej('scenario1'):.2f}. "
        f"Held-out accuracy after DPO orders the scenarios {' > '.join(k[-1] for k in order)}.",
        f"- **Scenarios 1 and 2 are almost the same data here.** On {mean(lambda s: s['same_chosen']):.0%} of the "
        "prompts the policy's best answer is the dataset's solution word for word (the task's solutions have one "
        "fixed form), so the two scenarios differ on few pairs; read their gap against its spread.",
        "- **Seeds.** Each seed has its own base, and the bases differ by several points; the claims compare runs "
        "within a seed, so that spread cancels in their statistics.",
    ])


def figures(summaries: list[dict], out_dir: Path) -> dict[str, Path]:
    """The β⁻ sweep (Fig. 9), RM vs DPO held-out accuracy (Fig. 4) and DPO vs PPO 3D curves, as PNGs."""
    from prefopt.plots import plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s in summaries:
        points = _sweep(s)
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
    per_seed_base = ", ".join(f"{_acc(s['base']):.1f}" for s in summaries)
    return "\n".join([
        "# The paper's LLM findings (§5), reproduced by prefopt on the embedded task",
        "",
        "<!-- Generated by scripts/paper.sh (prefopt/paper.py, prefopt/paper_report.py); do not edit by hand. -->",
        f"Written by `scripts/paper.sh{' --quick' if quick else ''}` in {minutes:.0f} minutes on a 2-core CPU, seeds "
        f"{', '.join(str(s['seed']) for s in summaries)}. Each seed builds its own base (`builtin:arith-base/SEED`), "
        "samples its own pairs and trains every run; numbers are mean ± sd over the seeds.",
        "",
        "## Set-up (chosen once, the same for every scenario)",
        "",
        f"- **Base**: `builtin:arith-base` (128 wide, 4 layers, SFT on 20,000 problems), held-out 4-5-point rate "
        f"{_stat([s['base'] for s in summaries], 'score45', 100)} % on {settings['eval_problems']} problems "
        f"(per seed: {per_seed_base}). The paper's bases: 32-53 %.",
        f"- **Another model** (the paper's Qwen-7B): `builtin:arith-weak` (64 wide, 2 layers), "
        f"{_stat([s['weak'] for s in summaries], 'score45', 100)} %.",
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
        f"[selection.md](selection.md)): one pass of DPO + SFT (λ 1, lr 1e-4) over the pairs of 4 candidates for "
        f"{settings['selected']['prompts']} training problems (`recipes/demo/onpolicy.yaml`); GRPO with the rule "
        f"reward for {settings['selected']['grpo_steps']} updates of 256 problems × 2 (`recipes/demo/grpo.yaml`); PPO "
        "with the rule reward (the demo's PPO settings, not searched). DPO + SFT and GRPO each have a control that "
        "trains as long on the same problems' judged-best answers with plain SFT.",
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
        "seed and its mean change is larger than its spread; the selected methods are also held against their "
        "controls, which train as long on the same problems' best answers (so that \"improves the base\" is not "
        "just \"more training\").",
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
    """Re-write the page from finished runs (`python -m prefopt.paper_report runs/paper docs --minutes 38`)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("runs", type=Path)
    ap.add_argument("docs", type=Path)
    ap.add_argument("--minutes", type=float, required=True, help="the wall time of the runs, for the page")
    args = ap.parse_args(argv)
    files = sorted(args.runs.glob("seed*/summary.json"))
    if not files:
        raise SystemExit(f"paper_report: no seed*/summary.json under {args.runs}")
    summaries = sorted((json.loads(f.read_text()) for f in files), key=lambda s: s["seed"])
    print(write(summaries, args.docs, args.minutes))


if __name__ == "__main__":
    main()
