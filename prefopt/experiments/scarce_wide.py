"""docs/scarce.md's section on docs/paper.md's runs at 1,024 problems an update (scarce.wider): its rows, set-up
and reading, left out of a page whose run did not have them."""

from __future__ import annotations

import statistics

from prefopt.experiments import control_pages

RUNS = [("GRPO + SFT term, 1,024 problems × 2 an update (docs/paper.md's)", "grpo_1024_sft"),
        ("its control: continued SFT on the best of 4 answers to those problems", "rft_1024"),
        ("DPO + SFT on the pairs of those answers", "dpo_sft_1024")]
CHANGES = [("GRPO + SFT term at 1,024 an update against its base", "grpo_1024_sft", "base"),
           ("its control at that size against the base", "rft_1024", "base"),
           ("**GRPO + SFT term at 1,024 an update against its control**", "grpo_1024_sft", "rft_1024"),
           ("DPO + SFT on those answers' pairs against its base", "dpo_sft_1024", "base"),
           ("**DPO + SFT on those answers' pairs against the same control**", "dpo_sft_1024", "rft_1024")]


def has(summaries: list[dict]) -> bool:
    """Whether every seed ran the section (runs before it was added to the harness did not)."""
    return all("rft_1024" in summary for summary in summaries)


def setup(summaries: list[dict], sizes: dict) -> list[str]:
    """The section's set-up bullet."""
    if not has(summaries):
        return []
    counts = lambda key: ", ".join(f"{s['candidates_1024'][key]:,}" for s in summaries)
    return [f"- **docs/paper.md's runs at 1,024 problems an update**: 4 answers from the base for each of "
            f"{summaries[0]['candidates_1024']['problems']:,} training problems (pairs: {counts('pairs')}; best "
            f"answers: {counts('best')}); GRPO + SFT term (`recipes/demo/grpo_1024_sft.yaml`: 1,024 problems × 2, lr "
            f"4e-4, λ 1) for {sizes['steps']} updates, which samples as many answers; its control, "
            f"`recipes/demo/rft.yaml` at lr 8e-4 on the best answers, one pass in {sizes['steps']} steps; DPO + SFT "
            "(`recipes/demo/onpolicy_1024.yaml`: λ 4, β 0.03, lr 4e-4) on the pairs, one pass in as many steps. "
            "docs/paper.md's validation choices on its own base, not searched on these. Added on 2026-12-04, after "
            "every other row's test numbers had been seen and after a validation-only probe of the same runs on "
            "these bases (docs/history.md)."]


def reading(summaries: list[dict]) -> list[str]:
    """What the section's verdicts say."""
    if not has(summaries):
        return []
    change = lambda run, other: control_pages.change(summaries, run, other)
    (grpo, grpo_verdict), (dpo, dpo_verdict) = change("grpo_1024_sft", "rft_1024"), change("dpo_sft_1024", "rft_1024")
    control, _ = change("rft_1024", "base")
    zero = statistics.mean(v for s in summaries for _, v in s["grpo_1024_sft"]["zero_std"])
    right = statistics.mean(s["grpo_1024_sft"]["train_accuracy"][-1][1] for s in summaries)
    return [f"- **At docs/paper.md's 1,024 problems an update: GRPO + SFT term {grpo} pp against its control "
            f"({grpo_verdict}); DPO + SFT on the pairs {dpo} pp ({dpo_verdict}).** The control moves the base by "
            f"{control} pp. {zero:.0%} of GRPO's groups scored the same and {right:.0%} of its last rollouts were "
            "right, so most of its gradient is the SFT term on answers the current model wrote, where the control "
            "imitates the base's. " + (
                "That beats imitating the base's best answers at equal samples and steps: on-policy RL with the "
                "verifiable reward adds to SFT on verified answers here." if grpo_verdict == "holds" else
                "It does not beat imitating the base's best answers beyond the spread here.") + (
                " The control's validation accuracy was still rising at its last evaluation on every seed, and no "
                "longer control ran at this size: whether more passes over the same answers would catch up is open."
                if all(s["rft_1024"]["valid"][-1][1] > s["rft_1024"]["valid"][-2][1] for s in summaries) else "")]
