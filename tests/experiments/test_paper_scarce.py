"""docs/paper.md's table of docs/scarce.md's methods: verdicts against the base, the control and the longer
control, on worked numbers."""

import json

from prefopt.experiments import paper_scarce
from prefopt.experiments.scarce import Sizes
from tests.experiments.test_scarce import summary
from tests.experiments.test_scarce_wide import with_wider


def test_each_method_against_its_base_its_control_and_the_longer_control(tmp_path):
    """Bases 40, 50, 60 (+0, +10, +20 below). GRPO at +3, +4, +5 → +4.0 ± 1.0 over the base (holds); its control
    at +4 → −1, 0, +1 = +0.0 ± 1.0 (1/3 seeds above); the longer control at +6 → −3, −2, −1 = −2.0 ± 1.0 (does not
    hold). DPO + SFT at +5, +6, +7 → +6.0 ± 1.0; its control at +4 → +2.0 ± 1.0 (holds); the longer control
    +0.0 ± 1.0. At 1,024 an update: the control at +10, GRPO + SFT term at +12, +13, +14 → +3.0 ± 1.0 over it
    (holds), the longer control at +13 → +0.0 ± 1.0; DPO + SFT at +9 → −1.0 ± 0.0 (does not hold); GRPO + SFT term
    for as many updates at +17, +18, +19 → +5.0 ± 1.0 over the longer control, its own control (holds). GRPO + SFT
    term at 64 × 8 did not run: no row."""
    seeds = [with_wider(summary(k, 40.0 + 10 * k, 43.0 + 11 * k, 44.0 + 10 * k, 45.0 + 11 * k, 44.0 + 10 * k,
                                46.0 + 10 * k), 52.0 + 11 * k, 50.0 + 10 * k, 49.0 + 10 * k,
                        (53.0 + 10 * k, 57.0 + 11 * k)) for k in range(3)]
    (tmp_path / "scarce").mkdir()
    (tmp_path / "scarce" / "summaries.json").write_text(json.dumps({"sizes": Sizes().__dict__, "seeds": seeds}))
    text = "\n".join(paper_scarce.section(tmp_path))
    spread = "not beyond the spread (1/3 seeds above)"
    assert (f"| GRPO, 64 problems × 8 an update | RL | +4.0 ± 1.0 | **holds** | +0.0 ± 1.0 | **{spread}** | "
            "-2.0 ± 1.0 | **does not hold** |") in text
    assert (f"| DPO + SFT, on-policy pairs, 3 passes | DPO family | +6.0 ± 1.0 | **holds** | +2.0 ± 1.0 | **holds** | "
            f"+0.0 ± 1.0 | **{spread}** |") in text
    assert (f"| GRPO + SFT term, 1,024 × 2 (docs/paper.md's selected) | RL | +13.0 ± 1.0 | **holds** | +3.0 ± 1.0 | "
            f"**holds** | +0.0 ± 1.0 | **{spread}** |") in text
    assert "| DPO family | +9.0 ± 0.0 | **holds** | -1.0 ± 0.0 | **does not hold** | -4.0 ± 0.0 | **does not hold** |" \
        in text
    assert "| GRPO + SFT term, 1,024 × 2, for the longer control's steps | RL | +18.0 ± 1.0 | **holds** | +5.0 ± 1.0 | " \
           "**holds** | its control |" in text
    assert "GRPO + SFT term, 64 × 8" not in text
    assert ("Beating both its base and its control beyond the spread there: DPO + SFT, on-policy pairs, 3 passes (DPO "
            "family); GRPO + SFT term, 1,024 × 2 (docs/paper.md's selected) (RL); GRPO + SFT term, 1,024 × 2, for the "
            "longer control's steps (RL). Beating the longer control too: GRPO + SFT term, 1,024 × 2, for the longer "
            "control's steps (RL).") in text
    assert "3 passes over the same answers (3 times the steps)" in text


def test_no_section_where_the_scarce_page_has_not_run(tmp_path):
    assert paper_scarce.section(tmp_path) == []
