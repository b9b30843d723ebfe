"""docs/scarce.md's section on docs/paper.md's runs at 1,024 problems an update (scarce.wider): its rows, set-up
and reading, left out of a page whose run did not have them (and its longer pair of runs out of one that ran only
the first three)."""

from __future__ import annotations

import statistics

from prefopt.experiments import REPO, control_pages, paper_selected
from prefopt.experiments.paper_settings import lr_text
from prefopt.recipe import load_recipe

RUNS = [("GRPO + SFT term, 1,024 problems × 2 an update (docs/paper.md's)", "grpo_1024_sft"),
        ("its control: continued SFT on the best of 4 answers to those problems", "rft_1024"),
        ("DPO + SFT on the pairs of those answers", "dpo_sft_1024"),
        ("that control for the longer control's passes over the same answers", "rft_1024_long"),
        ("GRPO + SFT term at 1,024 for as many updates", "grpo_1024_sft_long")]
CHANGES = [("GRPO + SFT term at 1,024 an update against its base", "grpo_1024_sft", "base"),
           ("its control at that size against the base", "rft_1024", "base"),
           ("**GRPO + SFT term at 1,024 an update against its control**", "grpo_1024_sft", "rft_1024"),
           ("DPO + SFT on those answers' pairs against its base", "dpo_sft_1024", "base"),
           ("**DPO + SFT on those answers' pairs against the same control**", "dpo_sft_1024", "rft_1024"),
           ("GRPO + SFT term at 1,024 against that control given more passes", "grpo_1024_sft", "rft_1024_long"),
           ("GRPO + SFT term at 1,024 for as many updates against its base", "grpo_1024_sft_long", "base"),
           ("**GRPO + SFT term at 1,024 for as many updates against that longer control**", "grpo_1024_sft_long",
            "rft_1024_long")]


def setup(summaries: list[dict], sizes: dict) -> list[str]:
    """The section's set-up bullet, its settings read from the recipes the runs used."""
    if not control_pages.has(summaries, "rft_1024"):
        return []
    counts = lambda key: ", ".join(f"{s['candidates_1024'][key]:,}" for s in summaries)
    grpo = load_recipe(REPO / "recipes/demo/grpo_1024_sft.yaml")
    control = load_recipe(REPO / "recipes/demo/rft.yaml", paper_selected.WIDE_CONTROL)
    dpo = load_recipe(REPO / "recipes/demo/onpolicy_1024.yaml")
    longer = sizes["long_passes"] * sizes["steps"]
    return [f"- **docs/paper.md's runs at 1,024 problems an update**: 4 answers from the base for each of "
            f"{summaries[0]['candidates_1024']['problems']:,} training problems (pairs: {counts('pairs')}; best "
            f"answers: {counts('best')}); GRPO + SFT term (`recipes/demo/grpo_1024_sft.yaml`: "
            f"{grpo.grpo.rollout_prompts:,} problems × {grpo.grpo.group_size}, lr {lr_text(grpo.optim.lr)}, λ "
            f"{grpo.grpo.sft_weight:g}) for {sizes['steps']} updates, which samples as many answers; its control, "
            f"`recipes/demo/rft.yaml` at lr {lr_text(control.optim.lr)} on the best answers, one pass in "
            f"{sizes['steps']} steps; "
            f"DPO + SFT (`recipes/demo/onpolicy_1024.yaml`: λ {dpo.loss.sft_weight:g}, β {dpo.loss.beta:g}, lr "
            f"{lr_text(dpo.optim.lr)}) on the pairs, one pass in as many steps. docs/paper.md's validation choices on "
            "its own base, not searched on these. Added on 2026-12-04, after every other row's test numbers had been seen "
            "and after a validation-only probe of the same runs on these bases (docs/history.md)." + (
                f" **The same control for {sizes['long_passes']} passes** over the same answers ({longer} steps), "
                f"and **GRPO + SFT term for as many updates** on the same problems: decided before either ran, after "
                f"a probe of that control had caught up with the {sizes['steps']}-update GRPO + SFT term."
                if control_pages.has(summaries, "grpo_1024_sft_long") else "")]


def reading(summaries: list[dict]) -> list[str]:
    """What the section's verdicts say."""
    if not control_pages.has(summaries, "rft_1024"):
        return []
    change = lambda run, other: control_pages.change(summaries, run, other)
    (grpo, grpo_verdict), (dpo, dpo_verdict) = change("grpo_1024_sft", "rft_1024"), change("dpo_sft_1024", "rft_1024")
    control, _ = change("rft_1024", "base")
    return [f"- **At docs/paper.md's 1,024 problems an update: GRPO + SFT term {grpo} pp against its control "
            f"({grpo_verdict}); DPO + SFT on the pairs {dpo} pp ({dpo_verdict}).** The control moves the base by "
            f"{control} pp. {_groups(summaries, 'grpo_1024_sft')}, so most of its gradient is the SFT term on answers "
            "the current model wrote, where the control imitates the base's. " + (
                "That beats imitating the base's best answers at equal samples and steps: on-policy RL with the "
                "verifiable reward adds to SFT on verified answers here." if grpo_verdict == "holds" else
                "It does not beat imitating the base's best answers beyond the spread here.") + _longer(summaries)]


def _longer(summaries: list[dict]) -> str:
    """The longer pair's sentences, or the caveat the longer control answers where it did not run."""
    if not control_pages.has(summaries, "grpo_1024_sft_long"):
        rising = all(s["rft_1024"]["valid"][-1][1] > s["rft_1024"]["valid"][-2][1] for s in summaries)
        return (" The control's validation accuracy was still rising at its last evaluation on every seed, and no "
                "longer control ran at this size: whether more passes over the same answers would catch up is "
                "open." if rising else "")
    (short, short_verdict), (long, long_verdict) = (control_pages.change(summaries, run, "rft_1024_long")
                                                    for run in ("grpo_1024_sft", "grpo_1024_sft_long"))
    gained = control_pages.change(summaries, "rft_1024_long", "rft_1024")[0]
    last = lambda run: summaries[0][run]["valid"][-1][0]  # its last step: the equal-steps run drew as many answers
    samples = last("grpo_1024_sft_long") / last("grpo_1024_sft")
    return (f" **Given more passes over the same answers, the control gains {gained} pp and GRPO + SFT term's "
            f"equal-steps run is {short} pp against it ({short_verdict}); for as many updates, GRPO + SFT term is {long} "
            f"pp against it ({long_verdict}).** {_groups(summaries, 'grpo_1024_sft_long')} in that run. " + (
                "So the RL win holds beyond equal steps: more SFT on the base's answers does not catch up with "
                f"on-policy RL given as many steps, though not as many samples (by then GRPO has drawn {samples:g} "
                "times the answers the control's candidates hold)." if long_verdict == "holds" else
                "So the RL win is one of equal steps: with more steps for both, continued SFT on the base's best "
                "answers is " + ("ahead of" if long_verdict == "does not hold" else "level with") + " on-policy RL "
                "here."))


def _groups(summaries: list[dict], run: str) -> str:
    """How much of a GRPO run's signal came from comparing answers: groups that scored the same, last rollouts right."""
    zero = statistics.mean(v for s in summaries for _, v in s[run]["zero_std"])
    right = statistics.mean(s[run]["train_accuracy"][-1][1] for s in summaries)
    return f"{zero:.0%} of GRPO's groups scored the same and {right:.0%} of its last rollouts were right"

