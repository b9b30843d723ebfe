"""docs/paper.md's table of selected settings: for each selected run, its recipe and settings, and when and from which
validation numbers it was chosen (docs/selection.md holds the grids and curves, docs/history.md the order of the runs).

The numbers below are validation accuracies on the pinned seed-0 base (every validation problem once) unless a row
says otherwise; they were measured before the row's own test numbers unless a row says otherwise.
"""

from __future__ import annotations

from dataclasses import asdict

import yaml

from prefopt.experiments.paper_report import SELECTED_RUNS
from prefopt.experiments.paper_selected import Selected

# key in a summary's "selected" -> (recipe and settings, how it was chosen); the fields in braces come from the
# recipe and the run's sizes (settings_table)
SETTINGS = {
    "ppo_rule": ("`recipes/demo/ppo.yaml` with the rule reward: 32 responses an update, 4 policy steps, {ppo_steps} updates",
                 "The demo's PPO settings, not searched."),
    "ppo_256": ("`recipes/demo/ppo_rule.yaml`: 256 responses an update, still 4 policy steps, lr 5e-5, for GRPO's "
                "{grpo_steps} updates on GRPO's problems; against GRPO's control",
                "2026-12-03, after this page had shown the demo's PPO settings below the base on the test split: "
                "0.440 at 40 updates, against 0.365 for the demo's settings, 0.425 at lr 2e-4, and 0.412 and 0.214 "
                "with 32 policy steps an update at 5e-5 and 2e-4; 0.484 at 100 updates."),
    "dpo_sft": ("`recipes/demo/onpolicy.yaml`: {onpolicy} over the pairs of 4 candidates for {prompts:,} training problems",
                "2026-12-02: 0.369 → 0.427 (DPO, DPOP, IPO and DPO + SFT, one pass at lr 3e-5 to 3e-4, then 3 or 6 "
                "passes at λ 1 to 8)."),
    "grpo": ("`recipes/demo/grpo.yaml`: {grpo_steps} updates of 256 problems × 2 answers, lr 1e-4",
             "2026-12-01, on seed 0's base as built before the CPU arithmetic was pinned. On the pinned base the same "
             "grid ranks 64 × 8 (0.452) a little above 256 × 2 (0.444), one standard error apart; the row keeps the "
             "demo's 256 × 2."),
    "grpo_sft": ("`recipes/demo/grpo_sft.yaml`: the same with an SFT term on its right answers, λ 1",
                 "2026-12-03: 0.487, against 0.454 at λ 0.3 and 0.464 at λ 1 with 128 problems × 4 (the recipe "
                 "before, whose row read +4.2 ± 4.9 pp)."),
    "rft": ("`recipes/demo/rft.yaml`: continued SFT on the best answer of the same candidates, as many steps",
            "The control's definition: DPO + SFT's settings without the pairs."),
    "rft_grpo": ("`recipes/demo/rft.yaml` on the best of 4 answers from the base to GRPO's {grpo_problems:,} problems, one "
                 "pass in {grpo_steps} steps", "The control's definition: GRPO's problems, samples and steps."),
    "rft_then_grpo": ("GRPO at 64 problems × 8 answers for {grpo_steps} updates, started from GRPO's control's model (its "
                      "reference too)",
                      "2026-12-01, on seed 0's base as built before the pin, from the control's 0.333: 0.345, over "
                      "256 × 2 at 0.320."),
    "rft_then_grpo_equal": ("The same for {equal_updates} updates: as many steps in all as the longer control",
                            "Not chosen on this page's validation: added on 2026-12-03 after docs/scarce.md, whose test "
                            "numbers had been seen, found it still rising there where the longer control had levelled "
                            "off. Its first 100 updates log exactly the 100-update run's "
                            "numbers."),
    "rft_then_dpo_sft": ("DPO + SFT on pairs of 4 candidates from the same model for DPO + SFT's {prompts:,} problems, 3 "
                         "passes at λ 2, lr 3e-5", "2026-12-01, on the same base: 0.353, over lr 1e-4 at 0.315 and "
                         "one pass at 1e-4 at 0.344."),
    "rft_long": ("`recipes/demo/rft.yaml`, {long_passes} passes ({long_steps} steps) over the answers GRPO's control "
                 "trains on: more SFT steps than the control and either run after it",
                 "2026-12-01, on the same base: 0.362, ahead of both runs after the control before the test runs. "
                 "Nothing else was tried."),
    "grpo_1024": ("`recipes/demo/grpo_1024.yaml`: {grpo_steps} updates of 1,024 problems × 2 answers, lr 4e-4: 4 times the "
                  "groups with a signal", "2026-12-02: 0.554, against 0.499, 0.528 and 0.494 at lr 1e-4, 2e-4 and "
                  "8e-4."),
    "grpo_1024_sft": ("`recipes/demo/grpo_1024_sft.yaml`: the same with the SFT term on its right answers, λ 1",
                      "2026-12-03, after this page had shown GRPO at that size below its control: 0.591, against "
                      "0.527 and 0.584 at lr 1e-4 and 8e-4, 0.553 and 0.569 at λ 0.3 and 3 (added after λ 1's test "
                      "numbers had been seen), and the control's 0.581, about a standard error below."),
    "dpo_sft_1024": ("`recipes/demo/onpolicy_1024.yaml`: DPO + SFT on the pairs of the control's candidates (the best "
                     "and worst of the 4 answers where they differ), one pass in its {grpo_steps} steps, λ 4, lr 4e-4, β 0.03",
                     "2026-12-03, after every other row's test numbers had been seen: at β 0.1, 0.577 against 0.520 and "
                     "0.556 at λ 1 and lr 4e-4 and 8e-4, 0.556 at λ 4 and 8e-4, 0.576 at λ 8 and 0.533 at lr 2e-4; "
                     "then, after λ 4 at β 0.1 had read +9.9 ± 7.7 pp over the base and +0.4 ± 3.5 against the "
                     "control here, β 0.3, 0.03 and 0.01: 0.575, 0.591 and 0.579."),
    "rft_1024": ("`recipes/demo/rft.yaml` on the best of 4 answers from the base to the same {wide_problems:,} problems (as "
                 "many samples as GRPO draws), one pass in {grpo_steps} steps, lr 8e-4",
                 "2026-12-02: 0.581, against 0.515, 0.557, 0.550 and 0.575 at lr 1e-4, 2e-4, 4e-4 and 1.6e-3."),
}


def onpolicy_settings() -> str:
    """The selected DPO + SFT settings as recipes/demo/onpolicy.yaml holds them (what the runs used)."""
    from prefopt.experiments import REPO

    recipe = yaml.safe_load((REPO / "recipes/demo/onpolicy.yaml").read_text())
    passes = recipe["train"]["epochs"]
    return (f"{'one pass' if passes == 1 else f'{passes} passes'} of DPO + SFT (λ {recipe['loss']['sft_weight']:g}, "
            f"lr {lr_text(recipe['optim']['lr'])})")


def lr_text(lr: float) -> str:
    """A learning rate as the recipes and pages write it (4e-4, not 4e-04)."""
    return f"{lr:.0e}".replace("e-0", "e-")


def settings_table(summaries: list[dict]) -> str:
    """One row per selected run every seed holds, named as in the page's tables: its settings and how they were
    chosen."""
    sizes = Selected(**summaries[0]["settings"]["selected"])  # the quick mode's sizes are not the page's
    fields = {**asdict(sizes), "onpolicy": onpolicy_settings(), "long_steps": sizes.long_steps,
              "equal_updates": sizes.equal_updates}
    lines = ["| run | recipe and settings | chosen on validation (seed-0 base) |", "|---|---|---|"]
    for name, key in SELECTED_RUNS:
        if all(key in s["selected"] for s in summaries):
            recipe, chosen = SETTINGS[key]
            lines.append(f"| {name} | {recipe.format(**fields)} | {chosen} |")
    return "\n".join(lines)
