"""docs/scarce.md's section on docs/paper.md's runs at 1,024 problems an update: its verdicts on worked numbers."""

from prefopt.experiments import scarce_page
from prefopt.experiments.scarce import Sizes
from tests.experiments.test_scarce import summary


def with_wider(seed_summary: dict, grpo: float, control: float, dpo: float) -> dict:
    """A seed's summary with the section's three runs at the given 4-5-point rates (%)."""
    run = lambda pct, zero=(), right=(): {"score5": pct / 100, "score45": pct / 100, "valid": [[0, 0.4], [25, pct / 100]],
                                          "zero_std": list(zero), "train_accuracy": list(right)}
    return {**seed_summary, "candidates_1024": {"pairs": 7000 + seed_summary["seed"], "best": 40000, "problems": 51200},
            "grpo_1024_sft": run(grpo, [[10, 0.9], [100, 1.0]], [[10, 0.7], [100, 0.8 + 0.05 * seed_summary["seed"]]]),
            "rft_1024": run(control), "dpo_sft_1024": run(dpo)}


def test_the_section_reads_its_verdicts_from_worked_numbers():
    """Bases 40, 50, 60; the control at 1,024 an update 50, 60, 70 (+10.0 ± 0.0 over the base). GRPO + SFT term at
    52.0, 61.5, 72.0: − the control +2.0, +1.5, +2.0 → +1.8 ± 0.3, holds. DPO + SFT at 49, 61, 70: −1.0, +1.0, +0.0
    → +0.0 ± 1.0, not beyond the spread (1/3 seeds above). GRPO's groups with no signal: mean of 0.9 and 1.0 = 95 %;
    its last rollouts right 80, 85, 90 % → 85 %. With GRPO level (50, 60, 70) the section says it does not beat the
    control; a run without the section has none of it. The control's validation rises from 0.4 to its end on
    every seed ("still rising"); with a last evaluation equal to the one before, it has levelled off."""
    base = [summary(k, 40.0 + 10 * k, 45.0, 42.0, 43.0, 42.0, 45.0) for k in range(3)]
    ahead = [with_wider(s, grpo, 50.0 + 10 * k, dpo) for k, (s, grpo, dpo) in
             enumerate(zip(base, (52.0, 61.5, 72.0), (49.0, 61.0, 70.0)))]
    page = scarce_page.markdown(ahead, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "| **GRPO + SFT term at 1,024 an update against its control** | +2.0 | +1.5 | +2.0 | +1.8 ± 0.3 | " \
           "**holds** |" in page
    assert "| **DPO + SFT on those answers' pairs against the same control** | -1.0 | +1.0 | +0.0 | +0.0 ± 1.0 | " \
           "**not beyond the spread (1/3 seeds above)** |" in page
    assert "| its control: continued SFT on the best of 4 answers to those problems | 50.0 | 60.0 | 70.0 |" in page
    assert "(pairs: 7,000, 7,001, 7,002; best answers: 40,000, 40,000, 40,000)" in page
    assert "GRPO + SFT term +1.8 ± 0.3 pp against its control (holds); DPO + SFT on the pairs +0.0 ± 1.0 pp " \
           "(not beyond the spread (1/3 seeds above)).** The control moves the base by +10.0 ± 0.0 pp. 95% of " \
           "GRPO's groups scored the same and 85% of its last rollouts were right" in page
    assert "on-policy RL with the verifiable reward adds to SFT on verified answers here." in page
    assert "The control's validation accuracy was still rising" in page  # 0.4 → its end, on every seed
    for seed_summary in ahead:
        seed_summary["rft_1024"]["valid"].append([50, seed_summary["rft_1024"]["valid"][-1][1]])  # levelled off
    assert "still rising" not in scarce_page.markdown(ahead, {**Sizes().__dict__}, minutes=20, quick=False)
    level = [with_wider(s, 50.0 + 10 * k, 50.0 + 10 * k, 50.0) for k, s in enumerate(base)]
    page = scarce_page.markdown(level, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "It does not beat imitating the base's best answers beyond the spread here." in page
    page = scarce_page.markdown(base, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "1,024" not in page
