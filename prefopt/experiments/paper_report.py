"""Turn the per-seed summaries of `prefopt.experiments.paper` into docs/paper.md: tables beside the paper's, figures, claims.

Every claim's statistic and threshold is fixed here, before any run: a claim "holds" on a seed when its statistic
is above zero. The page also stores the summaries it was written from (docs/paper/summaries.json), so a test can
check that the claims table on the page is what this code computes from them.
"""

from __future__ import annotations

import statistics

SCENARIOS = {  # Table 4: where chosen and rejected come from (prefopt/experiments/paper.py runs them)
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


def held_out_set(count: int | None) -> tuple[str, int]:
    """The held-out test set and its size: `count` draws, or with None every problem of the split once (draws
    repeat problems: arith.every_problem)."""
    if count is None:
        return "builtin:arith/sft/test/all/0", _test_split_size()
    return f"builtin:arith/sft/test/{count}/0", count


def held_out_words(count: int | None) -> str:
    """How a page names its held-out test set."""
    if count is None:
        return f"each of the test split's {_test_split_size():,} problems once"
    return f"{count:,} draws from the test split (a problem may repeat)"


def _test_split_size() -> int:
    from prefopt.tasks import arith

    return len(arith.every_problem("test"))


def accuracy_of(entry: dict) -> float:
    return 100 * entry["score45"]


def _roughness(curve: list) -> float:
    """Mean absolute change of held-out accuracy between consecutive evaluations after step 0 (pp).

    Step 0 is left out: there the policy is its reference, every implicit reward is 0 and DPO's accuracy is 0 by
    construction (a tie is not a win), so the first step would count as a 50-point "fluctuation".
    """
    values = [100 * v for step, v in curve if step > 0]
    return statistics.mean(abs(b - a) for a, b in zip(values, values[1:])) if len(values) > 1 else 0.0


def sweep_of(summary: dict) -> dict[float, float]:
    """β⁻ -> held-out 4-5-point rate; β⁻ = β⁺ = 0.1 is scenario 1's vanilla DPO run."""
    points = {0.1: accuracy_of(summary["scenarios"]["scenario1"])}
    points.update({float(b): accuracy_of(entry) for b, entry in summary["sweep"].items()})
    return points


def _best_beta(summary: dict) -> float:
    points = sweep_of(summary)
    return max(points, key=points.get)


# (claim as the paper states it, statistic whose sign decides it, function of one seed's summary).
CLAIMS = [
    ("On-policy pairs (scenario 1) give the best held-out accuracy (Table 2)",
     "4-5-pt rate of scenario 1 minus the best of scenarios 2-4 (pp)",
     lambda s: accuracy_of(s["scenarios"]["scenario1"])
     - max(accuracy_of(s["scenarios"][k]) for k in SCENARIOS if k != "scenario1")),
    ("DPO on on-policy pairs improves on the base (Table 2)",
     "4-5-pt rate of scenario 1 minus the base's (pp)",
     lambda s: accuracy_of(s["scenarios"]["scenario1"]) - accuracy_of(s["base"])),
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
     lambda s: accuracy_of(s["regularisers"]["flex_beta"]) - accuracy_of(s["scenarios"]["scenario1"])),
    ("Lowering β⁻ first helps, then hurts (Figure 9)",
     "1 if the best β⁻ is strictly inside the swept range, else -1",
     lambda s: 1.0 if min(_betas(s)) < _best_beta(s) < max(_betas(s)) else -1.0),
    ("Reward-model training is more stable than DPO (Figure 4)",
     "mean absolute change of held-out pair accuracy between evaluations after step 0: DPO's minus the RM's (pp)",
     lambda s: _roughness(s["stability"]["dpo"]) - _roughness(s["stability"]["rm"])),
    ("RLHF-PPO is ahead of DPO (Table 3)",
     "4-5-pt rate of PPO minus DPO's on scenario 1 (pp)",
     lambda s: accuracy_of(s["ppo"]) - accuracy_of(s["scenarios"]["scenario1"])),
]


# Does each method improve its base (held-out 4-5-point rate, pp)? And does it beat its control?
PAPER_RUNS = [  # the DPO family at the paper's settings (one pass over scenario 1's pairs, lr 1e-5)
    ("DPO, paper settings (scenario 1)", lambda s: s["scenarios"]["scenario1"]),
    ("DPO + SFT, paper settings", lambda s: s["regularisers"]["dpo_sft"]),
    ("flex-β, paper settings", lambda s: s["regularisers"]["flex_beta"]),
    ("IPO, paper settings", lambda s: s["regularisers"]["ipo"]),
    ("SLiC, paper settings", lambda s: s["regularisers"]["slic"]),
]
PAPER_CONTROL = ("control: SFT on scenario 1's chosen answers, paper settings", lambda s: s["paper_control"])
SELECTED_RUNS = [  # (name, key in a summary's "selected"); docs/paper.md's settings table names them the same
    ("PPO, rule reward (the demo's settings, 32 responses an update)", "ppo_rule"),
    ("PPO, rule reward, 256 responses an update (selected)", "ppo_256"),
    ("DPO + SFT, on-policy pairs (selected)", "dpo_sft"),
    ("GRPO, rule reward (selected)", "grpo"),
    ("GRPO + SFT term, rule reward (selected)", "grpo_sft"),
    ("control: continued SFT on the pairs' problems' best answers", "rft"),
    ("control: continued SFT on GRPO's problems' best answers", "rft_grpo"),
    ("GRPO from the control's model", "rft_then_grpo"),
    ("GRPO from the control's model, as many steps in all as the longer control", "rft_then_grpo_equal"),
    ("DPO + SFT from the control's model, on its own pairs", "rft_then_dpo_sft"),
    ("longer control: 3 passes over GRPO's problems' best answers", "rft_long"),
    ("GRPO, 1,024 problems × 2 an update (selected)", "grpo_1024"),
    ("GRPO + SFT term, 1,024 problems × 2 an update (selected)", "grpo_1024_sft"),
    ("DPO + SFT on the pairs of those answers (selected)", "dpo_sft_1024"),
    ("control: continued SFT on the best of 4 answers to those problems", "rft_1024"),
]
SELECTED = [(name, lambda s, key=key: s["selected"][key]) for name, key in SELECTED_RUNS]
BEATS = [*PAPER_RUNS, PAPER_CONTROL, ("RLHF-PPO, learned reward model", lambda s: s["ppo"]), *SELECTED]
# (statement, method, its control): a method improves on its base only if it also beats training as long on the
# same problems' right answers with plain SFT
CONTROLS = [*((f"{name.split(',')[0]} (paper settings) beats SFT on the same chosen answers, one pass at the same lr",
               get, PAPER_CONTROL[1]) for name, get in PAPER_RUNS),
            ("DPO + SFT (selected) beats its control (same problems and steps, SFT on the best answers)",
             lambda s: s["selected"]["dpo_sft"], lambda s: s["selected"]["rft"]),
            ("GRPO beats its control (same problems, samples and steps, SFT on the best of 4)",
             lambda s: s["selected"]["grpo"], lambda s: s["selected"]["rft_grpo"]),
            ("GRPO + SFT term beats the same control",
             lambda s: s["selected"]["grpo_sft"], lambda s: s["selected"]["rft_grpo"]),
            ("PPO (256 responses an update) beats the same control (same problems and steps)",
             lambda s: s["selected"]["ppo_256"], lambda s: s["selected"]["rft_grpo"]),
            ("GRPO from the control's model beats the longer control (more SFT steps than both together)",
             lambda s: s["selected"]["rft_then_grpo"], lambda s: s["selected"]["rft_long"]),
            ("GRPO from the control's model, as many steps in all, beats the longer control",
             lambda s: s["selected"]["rft_then_grpo_equal"], lambda s: s["selected"]["rft_long"]),
            ("DPO + SFT from the control's model beats the longer control",
             lambda s: s["selected"]["rft_then_dpo_sft"], lambda s: s["selected"]["rft_long"]),
            ("GRPO at 1,024 problems an update beats its control at that size (same problems, samples and steps)",
             lambda s: s["selected"]["grpo_1024"], lambda s: s["selected"]["rft_1024"]),
            ("GRPO + SFT term at 1,024 problems an update beats the same control",
             lambda s: s["selected"]["grpo_1024_sft"], lambda s: s["selected"]["rft_1024"]),
            ("DPO + SFT on the pairs of the same candidates beats the same control (same samples and steps)",
             lambda s: s["selected"]["dpo_sft_1024"], lambda s: s["selected"]["rft_1024"])]


def verdict(values: list[float]) -> tuple[str, str]:
    """(mean ± sd, verdict): a change counts when all seeds agree and the mean is beyond the spread."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    mean, held = statistics.mean(values), sum(v > 0 for v in values)
    result = "holds" if held == len(values) and mean > sd else "does not hold" if held == 0 else \
        f"not beyond the spread ({held}/{len(values)} seeds above)"
    return mean_sd(values, "+.1f"), result


def measured(rows: list[tuple], summaries: list[dict]) -> list[tuple]:
    """The (name, getter, ...) rows whose runs every summary holds: a page written before a run was added to the
    harness leaves that run's rows out instead of failing."""
    def held(row: tuple) -> bool:
        try:
            return all(get(s) is not None for get in row[1:] for s in summaries)
        except KeyError:
            return False
    return [row for row in rows if held(row)]


def beats_table(summaries: list[dict]) -> str:
    """Per method: held-out 4-5-point rate minus its base's, per seed, and whether it beats the base; then the
    selected methods against their controls."""
    seeds = [s["seed"] for s in summaries]
    lines = ["| method | " + " | ".join(f"seed {k}" for k in seeds) + " | mean ± sd (pp) | beats its base |",
             "|" + "---|" * (len(seeds) + 3)]
    for name, get in measured(BEATS, summaries):
        values = [accuracy_of(get(s)) - accuracy_of(s["base"]) for s in summaries]
        ms, held = verdict(values)
        lines.append(f"| {name} | " + " | ".join(f"{v:+.1f}" for v in values) + f" | {ms} | **{held}** |")
    lines += ["", "| method against its control | " + " | ".join(f"seed {k}" for k in seeds) +
              " | mean ± sd (pp) | verdict |", "|" + "---|" * (len(seeds) + 3)]
    for name, method, control in measured(CONTROLS, summaries):
        values = [accuracy_of(method(s)) - accuracy_of(control(s)) for s in summaries]
        ms, held = verdict(values)
        lines.append(f"| {name} | " + " | ".join(f"{v:+.1f}" for v in values) + f" | {ms} | **{held}** |")
    return "\n".join(lines)


def _change(summary: dict, scenario: str) -> float:
    entry = summary["scenarios"][scenario]
    return entry["logp_rejected"] - entry["logp_rejected_base"]


def _betas(summary: dict) -> list[float]:
    return list(sweep_of(summary))


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
        lines.append(f"| {c['claim']} | {c['statistic']} | " + " | ".join(cells) + f" | {mean_sd(c['values'], '+.2f')} | "
                     f"{beyond} | **{c['verdict']}** |")
    return "\n".join(lines)


def mean_sd(values: list, fmt: str = ".1f") -> str:
    """Per-seed values as "mean ± sd" for the page's tables and sentences ("n/a" when a run has no such value)."""
    if any(v is None for v in values):  # e.g. SLiC's Δ: it has no reference model
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} ± {sd:{fmt.lstrip('+')}}"  # a spread has no sign


def stat(entries: list[dict], key: str, scale: float = 1.0, fmt: str = ".1f") -> str:
    """mean ± sd over seeds of one number of the entries (one entry per seed)."""
    return mean_sd([None if e[key] is None else scale * e[key] for e in entries], fmt)


def tables(summaries: list[dict]) -> str:
    """Table 1, Table 2, Table 10 and Table 3 analogues, mean ± sd over seeds, the paper's numbers beside."""
    of = lambda get: [get(s) for s in summaries]  # one entry per seed
    out = ["## Table 1: per-token log-probs of the training pairs, base → after DPO", "",
           "| scenario | chosen: base → DPO | rejected: base → DPO | paper (13B) chosen | paper (13B) rejected |",
           "|---|---|---|---|---|"]
    for k in SCENARIOS:
        runs, p = of(lambda s, k=k: s["scenarios"][k]), PAPER_T1[k]
        logp = lambda key, runs=runs: stat(runs, key, fmt=".3f")
        out.append(f"| {k[-1]} | {logp('logp_chosen_base')} → {logp('logp_chosen')} | {logp('logp_rejected_base')} → "
                   f"{logp('logp_rejected')} | {p[0]} → {p[2]} | {p[1]} → {p[3]} |")
    out += ["", "## Table 2: held-out accuracy (%, one greedy answer per problem, rule judge)", "",
            "| model | 5 points | 4-5 points | paper (13B) 5 points | paper (13B) 4-5 points |", "|---|---|---|---|---|"]
    rows = [("base", of(lambda s: s["base"]))]
    rows += [(f"DPO, scenario {k[-1]}", of(lambda s, k=k: s["scenarios"][k])) for k in SCENARIOS]
    for (name, runs), paper in zip(rows, PAPER_T2.values()):
        out.append(f"| {name} | {stat(runs, 'score5', 100)} | {stat(runs, 'score45', 100)} | {paper[0]} | {paper[1]} |")
    out += ["", "## Table 10: regularisers on scenario 1's pairs", "",
            "| run | 4-5 points (%) | Δ log π(chosen) | Δ log π(rejected) | paper (33B, MATH*) 5 / 4-5 points |",
            "|---|---|---|---|---|"]
    for key, name in REG_NAMES.items():
        runs = of(lambda s, key=key: s["scenarios"]["scenario1"] if key == "dpo" else s["regularisers"][key])
        paper = "{} / {}".format(*PAPER_T10[key]) if key in PAPER_T10 else "not reported"
        out.append(f"| {name} | {stat(runs, 'score45', 100)} | {stat(runs, 'delta_chosen', fmt='.2f')} | "
                   f"{stat(runs, 'delta_rejected', fmt='.2f')} | {paper} |")
    out += ["", "Δ: log π - log π_ref summed over the response, mean over scenario 1's pairs, after training.", "",
            "## Table 3: DPO vs RLHF-PPO (same base; the reward model trained on scenario 1's pairs)", "",
            "| model | 5 points (%) | 4-5 points (%) | paper (33B): mean of its 7 poem and slogan scores |",
            "|---|---|---|---|"]
    for name, runs, paper in (("base", of(lambda s: s["base"]), "0.574"),
                              ("DPO", of(lambda s: s["scenarios"]["scenario1"]), "0.741"),
                              ("RLHF-PPO", of(lambda s: s["ppo"]), "0.806"),
                              ("PPO, rule reward", of(lambda s: s["selected"]["ppo_rule"]), "not in the paper"),
                              ("GRPO, rule reward", of(lambda s: s["selected"]["grpo"]), "not in the paper")):
        out.append(f"| {name} | {stat(runs, 'score5', 100)} | {stat(runs, 'score45', 100)} | {paper} |")
    out += ["", "## Selected settings: what improves the base, and its control", "",
            "| run | 5 points (%) | 4-5 points (%) |", "|---|---|---|"]
    for name, get in (("base", lambda s: s["base"]), ("DPO, paper settings", lambda s: s["scenarios"]["scenario1"]),
                      *measured(SELECTED, summaries)):
        out.append(f"| {name} | {stat(of(get), 'score5', 100)} | {stat(of(get), 'score45', 100)} |")
    curves = [s["selected"]["grpo"].get("train_accuracy") or [] for s in summaries]
    if all(curves):
        out += ["", "GRPO's accuracy on its own rollouts (training problems, rule judge), first logged update → last: " +
                ", ".join(f"seed {i}: {c[0][1]:.3f} (update {c[0][0]}) → {c[-1][1]:.3f} (update {c[-1][0]})"
                          for i, c in enumerate(curves)) + "."]
    return "\n".join(out)
