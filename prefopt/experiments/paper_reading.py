"""docs/paper.md's reading section: what the numbers say at this scale, in sentences built from the summaries."""

from __future__ import annotations

import statistics
from functools import partial

from prefopt.experiments.paper_report import REG_NAMES, SCENARIOS, SELECTED, accuracy_of, mean_sd, measured, verdict


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
    selected = {name: mean(lambda s, get=get: accuracy_of(get(s))) - base for name, get in measured(SELECTED, summaries)}
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
        f"- **Selected settings.** {min(selected.values()):+.1f} to {max(selected.values()):+.1f} pp against the base "
        f"({min(selected, key=selected.get)}; {max(selected, key=selected.get)}). The base is far from converged (the "
        "1,700-step model the demo can afford; [converged.md](converged.md) converges it, [scarce.md](scarce.md) fits "
        "scarce SFT data), so training on its own right answers already improves it: that is the control.",
        f"- **Off-policy rejected answers are already unlikely.** The other model's worst answers start at "
        f"{rej('scenario3'):.2f} nats per token under the base, the policy's own worst at {rej('scenario1'):.2f}. "
        f"Held-out accuracy after DPO orders the scenarios {' > '.join(k[-1] for k in order)}.",
        f"- **Scenarios 1 and 2 are almost the same data here.** On {mean(lambda s: s['same_chosen']):.0%} of the "
        "prompts the policy's best answer is the dataset's solution word for word (the task's solutions have one "
        "fixed form), so the two scenarios differ on few pairs; read their gap against its spread.",
        *_limits(summaries),
        *_ppo(summaries),
        *_after_control(summaries),
        *_wider(summaries),
        "- **Seeds.** Each seed has its own base, and the bases differ by several points; the claims compare runs "
        "within a seed, so that spread cancels in their statistics.",
        *_by_operation(summaries),
    ])


OPERATIONS = {"+": "+", "-": "−", "*": "×"}
BY_OPERATION = [("base", lambda s: s["base"]),
                ("DPO + SFT, on-policy pairs (selected)", lambda s: s["selected"]["dpo_sft"]),
                ("GRPO, 1,024 problems × 2 an update (selected)", lambda s: s["selected"].get("grpo_1024")),
                ("its control: SFT on the best of 4 answers to those problems", lambda s: s["selected"].get("rft_1024")),
                ("longer control: 3 passes over GRPO's problems' best answers", lambda s: s["selected"]["rft_long"])]


def _by_operation(summaries: list[dict]) -> list[str]:
    """Where the seeds' bases differ (each operation's held-out rate), what their samples hold, and what moves."""
    runs = [(name, [get(s) for s in summaries]) for name, get in BY_OPERATION]
    if not all(entry and "by_operation" in entry for _, entries in runs for entry in entries) or not all(
            "samples_by_operation" in s["selected"]["rft_1024"] for s in summaries):  # summaries from before them
        return []
    samples = [{"by_operation": s["selected"]["rft_1024"]["samples_by_operation"]} for s in summaries]
    rate = lambda entry, op, key="right": 100 * entry["by_operation"].get(op, {}).get(key, 0.0)
    cell = lambda entries, op, key="right": " / ".join(f"{rate(e, op, key):.0f}" for e in entries)
    ops = [op for op in OPERATIONS if op in summaries[0]["base"]["by_operation"]]
    table = [f"| held-out 4-5-point rate (%, seeds {' / '.join(str(s['seed']) for s in summaries)}) | " +
             " | ".join(f"{OPERATIONS[op]} ({summaries[0]['base']['by_operation'][op]['problems']:,} problems)"
                        for op in ops) + " |", "|---|" + "---|" * len(ops)]
    table += [f"| {name} | " + " | ".join(cell(entries, op) for op in ops) + " |" for name, entries in runs]
    table += ["| the base's 4 samples (temperature 1) to the 1,024-an-update problems: problems with a right one | "
              + " | ".join(cell(samples, op, "any_right") for op in ops) + " |"]
    add = lambda entries, key="right": [rate(entry, "+", key) for entry in entries]
    base, grpo, control = add(runs[0][1]), add(runs[2][1]), add(runs[3][1])
    strong = max(range(len(base)), key=base.__getitem__)
    weak = [i for i in range(len(base)) if base[i] < base[strong] / 2]
    if not weak:
        return ["- **The operations.** No seed's base gets fewer than half as many additions right as the best one:",
                "", *table]
    near = statistics.mean(add(runs[0][1], "near_misses")[i] for i in weak)
    sampled = statistics.mean(add(samples, "any_right")[i] for i in weak)
    moved = lambda run: " and ".join(f"{run[i] - base[i]:+.1f}" for i in weak)
    return [
        "- **What separates the seeds' bases: addition.** Seed "
        f"{summaries[strong]['seed']}'s base gets {base[strong]:.0f}% of the held-out additions right, and GRPO at "
        f"1,024 problems an update and its control lift that to {grpo[strong]:.0f}% and {control[strong]:.0f}%. "
        f"The bases of seed{'s' if len(weak) > 1 else ''} {' and '.join(str(summaries[i]['seed']) for i in weak)} get "
        f"{' and '.join(f'{base[i]:.0f}%' for i in weak)} right, and {near:.0f}% of their wrong additions are within "
        "3 of the answer (the final add of the units goes wrong). Among 4 of their own samples at temperature 1, "
        f"{sampled:.0f}% of the training additions have a right one. On these bases GRPO moves the addition rate by "
        f"{moved(grpo)} points and its control by {moved(control)}: both learn only from the right answers the base "
        "samples (GRPO where a group of 2 holds a right and a wrong one, the control from every right one among 4), "
        "and in 100 updates neither makes a step the weak bases rarely get right as common as the strong base "
        "makes it. That is the seed spread of every \"beats its base\" row above: "
        "to beat it beyond the spread, a method has to lift the weak bases' addition too. The held-out rate of each "
        "operation, for the base and the runs that move it most:", "", *table,
    ]


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


def _ppo(summaries: list[dict]) -> list[str]:
    """Why PPO at the demo's settings loses the base, from what its rollouts logged; and PPO with 8× the responses."""
    runs = [s["selected"]["ppo_rule"] for s in summaries]
    if not all("rollouts" in run for run in runs):  # summaries from before PPO's rollout statistics were kept
        return []

    def span(name: str, key: str, fmt: str) -> str:  # mean over the seeds, first logged stretch -> last
        at = lambda index: statistics.mean(s["selected"][name]["rollouts"][key][index][1] for s in summaries)
        return f"{at(0):{fmt}} → {at(-1):{fmt}}"

    base = partial(_over_base, summaries)
    drawn = lambda name: f"{statistics.mean(s['selected'][name]['responses'] for s in summaries):,.0f}"
    text = (f"- **What limits PPO here.** At the demo's settings (32 responses an update: {drawn('ppo_rule')} in all; "
            f"the selected GRPO draws {drawn('grpo')}), PPO's rollouts score {span('ppo_rule', 'objective/scores', '.2f')} "
            "(the judge's 1-5; mean over the seeds and over each logged stretch of 5 updates, first → last) while their "
            f"KL to the base grows {span('ppo_rule', 'objective/kl', '.2f')} nats per response: the policy moves more than "
            f"its reward, and it ends {mean_sd(base('ppo_rule'), '+.1f')} pp against the base. Its entropy "
            f"({span('ppo_rule', 'objective/entropy', '.2f')} nats per response) falls a little and its length "
            f"({span('ppo_rule', 'response/length_mean', '.1f')} tokens) holds, so it is neither entropy collapse "
            "nor length; its critic, started from the base, is still learning the reward's scale (value loss "
            f"{span('ppo_rule', 'loss/value_avg', '.2f')}), and 32 responses an update are too few to average its "
            "errors out.")
    if all("ppo_256" in s["selected"] for s in summaries):
        against = _gain(summaries, "ppo_256", "rft_grpo")
        text += (" With 256 responses an update at the same 4 policy steps (the validation search's choice), for "
                 f"GRPO's updates on GRPO's problems ({drawn('ppo_256')} responses), the score goes "
                 f"{span('ppo_256', 'objective/scores', '.2f')} and the KL {span('ppo_256', 'objective/kl', '.2f')}: "
                 f"PPO moves the base by {mean_sd(base('ppo_256'), '+.1f')} pp ({verdict(base('ppo_256'))[1]}) and "
                 f"ends {mean_sd(against, '+.1f')} pp against GRPO's control ({verdict(against)[1]}).")
    return [text]


def _sft_term(summaries: list[dict]) -> str:
    """What the SFT term adds to GRPO: its margin over GRPO alone and over the control, in the beats table's terms."""
    gain = partial(_gain, summaries)
    over_control = gain("grpo_sft", "rft_grpo")
    return (" With the SFT term on the rollout's right answers (all-right groups included), GRPO changes by "
            f"{mean_sd(gain('grpo_sft', 'grpo'), '+.1f')} pp against GRPO alone and "
            f"{mean_sd(over_control, '+.1f')} pp against the control: " +
            ("comparing answers within a group adds to training on the right ones."
             if verdict(over_control)[1] == "holds" else
             "what the term adds is what the control has too, the right answers themselves; comparing answers "
             "within a group adds nothing measurable here."))


def _after_control(summaries: list[dict]) -> list[str]:
    """The control first, then each family from its model: what each adds, against the longer control."""
    gain = partial(_gain, summaries)
    if not all("rft_then_grpo" in s["selected"] for s in summaries):  # summaries from before these runs
        return []
    pairs = statistics.mean(s["selected"]["rft_then_dpo_sft"]["pairs"] for s in summaries)
    zero_std = statistics.mean(v for s in summaries for _, v in s["selected"]["rft_then_grpo"]["rollouts"]
                               ["grpo/zero_std_frac"])
    names = {"rft_then_grpo": "GRPO", "rft_then_grpo_equal": "GRPO for as many steps in all",
             "rft_then_dpo_sft": "DPO + SFT"}
    runs = [run for run in names if all(run in s["selected"] for s in summaries)]
    ahead = [names[run] for run in runs if verdict(gain(run, "rft_long"))[1] == "holds"]
    return [
        "- **The control first, then each family.** Started from the control's model (SFT on verified answers, then "
        f"RL: the usual order), GRPO (64 problems × 8; {zero_std:.0%} of its groups without signal) moves it by "
        f"{mean_sd(gain('rft_then_grpo', 'rft_grpo'), '+.1f')} pp and ends "
        f"{mean_sd(gain('rft_then_grpo', 'rft_long'), '+.1f')} pp against the longer control; DPO + SFT on the "
        f"{pairs:.0f} pairs (mean) judged from the control's own candidates moves it by "
        f"{mean_sd(gain('rft_then_dpo_sft', 'rft_grpo'), '+.1f')} pp and ends "
        f"{mean_sd(gain('rft_then_dpo_sft', 'rft_long'), '+.1f')} pp against the longer control, which itself gains "
        f"{mean_sd(gain('rft_long', 'rft_grpo'), '+.1f')} pp over the one-pass control. " + _equal_steps(summaries) +
        ("Beyond the spread on every seed: " + " and ".join(ahead) +
         (" adds" if len(ahead) == 1 else " add") + " what more SFT on the same right answers does not." if ahead else
         "None beats the longer control beyond the spread: on this unfinished base, more SFT on the same right "
         "answers is still the larger step."),
    ]


def _equal_steps(summaries: list[dict]) -> str:
    """GRPO after the control for as many steps in all as the longer control (a sentence; '' for older runs)."""
    if not all("rft_then_grpo_equal" in s["selected"] for s in summaries):
        return ""
    gain = partial(_gain, summaries)
    against = gain("rft_then_grpo_equal", "rft_long")
    return ("Given as many steps in all as the longer control (twice the updates), GRPO moves the control by "
            f"{mean_sd(gain('rft_then_grpo_equal', 'rft_grpo'), '+.1f')} pp and ends {mean_sd(against, '+.1f')} pp "
            f"against the longer control ({verdict(against)[1]}). ")


def _wider(summaries: list[dict]) -> list[str]:
    """GRPO at four times the problems an update against its base, the demo's GRPO and its control at that size."""
    if not all("grpo_1024" in s["selected"] for s in summaries):  # summaries from before these runs
        return []
    gain = partial(_gain, summaries)
    over_base, control_gain = _over_base(summaries, "grpo_1024"), _over_base(summaries, "rft_1024")
    against = gain("grpo_1024", "rft_1024")
    zero_std = statistics.mean(v for s in summaries for _, v in s["selected"]["grpo_1024"]["rollouts"]
                               ["grpo/zero_std_frac"])
    outcome = verdict(against)[1]
    return [
        "- **Four times the problems an update.** GRPO at 1,024 problems × 2 (lr 4e-4; "
        f"{zero_std:.0%} of its groups without signal) moves the base by {mean_sd(over_base, '+.1f')} pp "
        f"({verdict(over_base)[1]}), {mean_sd(gain('grpo_1024', 'grpo'), '+.1f')} pp more than the demo's 256 × 2; "
        "its control at that size (SFT on the best of 4 answers to the same 51,200 problems, lr 8e-4) moves it by "
        f"{mean_sd(control_gain, '+.1f')} pp, and GRPO ends {mean_sd(against, '+.1f')} pp against it ({outcome}). " +
        ("Given enough problems with a signal in each update, comparing answers within a group adds to training on "
         "the right ones." if outcome == "holds" else
         "Both gain from more problems an update; at equal problems, samples and steps, comparing answers within a "
         "group does not add measurably to training on the right ones.") + _wide_sft_term(summaries) +
        _wide_dpo_sft(summaries),
    ]


def _wide_sft_term(summaries: list[dict]) -> str:
    """GRPO at 1,024 problems an update with the SFT term on its right answers, against its base and the control."""
    if not all("grpo_1024_sft" in s["selected"] for s in summaries):  # summaries from before this run
        return ""
    against, over_base = _gain(summaries, "grpo_1024_sft", "rft_1024"), _over_base(summaries, "grpo_1024_sft")
    term = statistics.mean(v for s in summaries for _, v in s["selected"]["grpo_1024_sft"]["rollouts"]
                           ["grpo/sft_frac"])
    alone = _gain(summaries, "grpo_1024_sft", "grpo_1024")
    outcome = verdict(against)[1]
    return (" With the SFT term on its right answers (λ 1, the validation search's best RL run at that size; "
            f"{term:.0%} of its rollout answers right and in the term) it moves the base by "
            f"{mean_sd(over_base, '+.1f')} pp ({verdict(over_base)[1]}), {mean_sd(alone, '+.1f')} pp more than GRPO "
            f"alone, and ends {mean_sd(against, '+.1f')} pp against the same control ({outcome}): " +
            ("with the right answers in its update, comparing them within a group adds to them." if outcome == "holds"
             else "the term brings GRPO up to the control, as the validation search had them (a point apart), and no "
             "further."))


def _wide_dpo_sft(summaries: list[dict]) -> str:
    """DPO + SFT on the wide control's own pairs: against its base and that control; its 3D metrics on unseen pairs."""
    if not all("dpo_sft_1024" in s["selected"] for s in summaries):  # summaries from before this run
        return ""
    against, over_base = _gain(summaries, "dpo_sft_1024", "rft_1024"), _over_base(summaries, "dpo_sft_1024")
    run, outcome = [s["selected"]["dpo_sft_1024"] for s in summaries], verdict(against)[1]
    chosen, rejected = ([r["curves"][f"eval/3d/delta_{side}"][-1][1] for r in run] for side in ("chosen", "rejected"))
    meaning = {"holds": "its own wrong answers teach it what training on its right ones does not.",
               "does not hold": "learning from the pairs trails training on every problem's right answer."}.get(
        outcome, "pushing the model away from its own wrong answers adds nothing measurable to its right ones.")
    return (f" DPO + SFT on the {statistics.mean(r['pairs'] for r in run):,.0f} pairs (mean) of the control's own "
            f"candidates, in its steps, moves the base by {mean_sd(over_base, '+.1f')} pp ({verdict(over_base)[1]}) "
            f"and ends {mean_sd(against, '+.1f')} pp against the control ({outcome}): {meaning} On scenario 1's pairs "
            f"its Δ log π(chosen) ends at {mean_sd(chosen, '+.2f')} nats and Δ log π(rejected) at "
            f"{mean_sd(rejected, '+.2f')}.")


def _over_base(summaries: list[dict], run: str) -> list[float]:
    """Per seed, the held-out accuracy of one selected-settings run minus the base's (pp)."""
    return [accuracy_of(s["selected"][run]) - accuracy_of(s["base"]) for s in summaries]


def _gain(summaries: list[dict], run: str, other: str) -> list[float]:
    """Per seed, the held-out accuracy of one selected-settings run minus another's (pp)."""
    return [accuracy_of(s["selected"][run]) - accuracy_of(s["selected"][other]) for s in summaries]
