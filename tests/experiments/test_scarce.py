"""docs/scarce.md: its verdicts on worked numbers, the committed page against its summaries, quick mode."""

import json
import subprocess
import sys

import pytest

from prefopt.experiments import scarce_page
from prefopt.experiments.scarce import Sizes
from tests.conftest import ROOT, clean_env


def summary(seed, base, grpo, rft_grpo, dpo_sft, rft, rft_long, rft_then_grpo=None, rft_then_dpo_sft=None,
            rft_then_grpo_equal=None, grpo_sft=None):
    """A seed's summary with the given 4-5-point rates (%) and short curves (GRPO and DPO + SFT after the control: by
    default level with the longer control)."""
    acc = lambda pct: {"score5": pct / 100, "score45": pct / 100}
    run = lambda pct, zero=(): {**acc(pct), "valid": [[0, base / 100], [25, pct / 100]], "zero_std": list(zero),
                                "train_accuracy": [[10, 0.5], [100, 0.7]] if zero else [],
                                "delta_chosen": [[10, 0.1], [200, 0.2 * seed]], "delta_rejected": [[200, -3.0]]}
    return {"seed": seed, "shipped": acc(30.0), "base": acc(base), "base_loss": [[100, 1.0], [3000, 0.01]],
            "candidates": {"pairs": 2000 + seed, "best": 8000, "problems": 12800},
            "grpo": run(grpo, [[10, 0.8], [20, 0.6]]), "rft_grpo": run(rft_grpo), "dpo_sft": run(dpo_sft),
            "rft": run(rft), "rft_long": run(rft_long),
            "rft_then_grpo": run(rft_long if rft_then_grpo is None else rft_then_grpo, [[10, 0.5]]),
            "rft_candidates": {"pairs": 1000 + 100 * seed},
            "rft_then_dpo_sft": run(rft_long if rft_then_dpo_sft is None else rft_then_dpo_sft),
            **({} if rft_then_grpo_equal is None else {"rft_then_grpo_equal": run(rft_then_grpo_equal, [[10, 0.4]])}),
            **({} if grpo_sft is None else {"grpo_sft": run(grpo_sft, [[10, 0.3], [20, 0.2]])})}


def test_the_page_reads_its_verdicts_from_worked_numbers():
    """GRPO − control: +3.0, +2.0, +1.0 → mean 2.0 > sd 1.0, every seed above: holds.
    DPO + SFT − control: +1.0, −0.5, +0.5 → two of three above: not beyond the spread.
    Controls − base: +2.0, +3.0, +4.0 (holds) for both. GRPO's share of groups with no signal: mean of 0.8 and
    0.6 = 70 %; its rollouts right on 50 % at the first update, 70 % at the last.
    In the reverse case GRPO is 1 point below its control on every seed: the control is ahead beyond the spread.
    GRPO − longer control: +0.0, +0.5, +0.0 → not beyond the spread, so the control catches up with GRPO.
    GRPO from the control's model (46, 66, 56.5) − longer control: +1.0, +1.5, +1.5 → 1.3 ± 0.3: holds; − the
    one-pass control: +4.0, +3.0, +2.5 → holds; in the reverse case it is level with the longer control.
    DPO + SFT from the control's model (45.5, 65.0, 55.0) − longer control: +0.5, +0.5, +0.0 → +0.3 ± 0.3, not
    beyond the spread; − the one-pass control: +3.5, +2.0, +1.0 → +2.2 ± 1.3, holds. Its pairs: 1,000, 1,100, 1,200
    (mean 1,100)."""
    summaries = [summary(0, 40.0, 45.0, 42.0, 43.0, 42.0, 45.0, 46.0, 45.5),
                 summary(1, 60.0, 65.0, 63.0, 62.5, 63.0, 64.5, 66.0, 65.0),
                 summary(2, 50.0, 55.0, 54.0, 54.5, 54.0, 55.0, 56.5, 55.0)]
    page = scarce_page.markdown(summaries, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "| **GRPO against its control** | +3.0 | +2.0 | +1.0 | +2.0 ± 1.0 | **holds** |" in page
    assert "| **DPO + SFT against its control** | +1.0 | -0.5 | +0.5 | +0.3 ± 0.8 | " \
           "**not beyond the spread (2/3 seeds above)** |" in page
    assert "| GRPO's control against the base | +2.0 | +3.0 | +4.0 | +3.0 ± 1.0 | **holds** |" in page
    assert "| scarce-SFT base | 40.0 | 60.0 | 50.0 | 50.0 ± 10.0 |" in page
    assert "right on 50% of the training problems at the first logged update and 70% at the last; 70% of its" in page
    assert "comparing a problem's answers teaches more" in page and "the pairs add nothing measurable" in page
    assert "it draws 6,400 problems, so about 1,920 of them teach it anything; the control imitates a right answer " \
           "to 8,000 problems" in page  # 100 updates × 64 problems, 30 % of groups with a signal
    assert "(2,000, 2,001, 2,002 for seeds 0, 1, 2)" in page
    assert "| GRPO against the longer control | +0.0 | +0.5 | +0.0 | +0.2 ± 0.3 |" in page
    assert "ends +0.20 nats from the base's and the rejected ones' -3.00" in page  # chosen: (0 + 0.2 + 0.4) / 3
    assert "keeps the chosen ones from falling" in page
    assert "the control catches up with GRPO: at equal steps it had less training" in page
    assert "| **GRPO from the control's model against the longer control** | +1.0 | +1.5 | +1.5 | +1.3 ± 0.3 | " \
           "**holds** |" in page
    assert "| GRPO from the control's model against the one-pass control | +4.0 | +3.0 | +2.5 | +3.2 ± 0.8 | " \
           "**holds** |" in page
    assert "The control, then GRPO: +3.2 ± 0.8 pp over the control it starts from (holds), +1.3 ± 0.3 pp against " \
           "the longer control (holds).** 50% of its groups" in page
    assert "| **DPO + SFT from the control's model against the longer control** | +0.5 | +0.5 | +0.0 | +0.3 ± 0.3 | " \
           "**not beyond the spread (2/3 seeds above)** |" in page
    assert "The control, then DPO + SFT: +2.2 ± 1.3 pp over the control it starts from (holds)" in page
    assert "It trains on the 1,100 pairs (mean)" in page and "judged into pairs (1,000, 1,100, 1,200)" in page
    assert "After the control, GRPO adds to it beyond more passes of SFT on the same answers; DPO + SFT adds " \
           "nothing measurable: of the two, only GRPO gains" in page
    assert "ends +0.20 nats from the control's and the rejected ones' -3.00" in page  # the curves of summary()
    both = [summary(k, 40.0, 41.0, 42.0, 44.0, 42.0, 43.0, 44.0, 44.0) for k in range(3)]  # both +1.0 on every seed
    assert "here the order that improves the model most is SFT on verified answers, then a method that learns " \
           "from comparisons" in scarce_page.markdown(both, {**Sizes().__dict__}, minutes=20, quick=False)
    worse = [summary(k, 40.0, 41.0, 42.0, 44.0, 42.0 - k, 43.0) for k in range(3)]  # the reverse: DPO + SFT ahead
    page = scarce_page.markdown(worse, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "The control is ahead on every seed: per step" in page and "rejected answers carry signal" in page
    assert "it draws 6,400 problems, so about 1,920" in page
    assert "DPO + SFT also beats a control given more passes over the same answers" in page
    assert "Neither adds anything measurable after the control" in page


def test_the_earlier_run_stands_beside_this_one_and_both_pooled():
    """GRPO − its control: earlier run +3.0, +2.0, +1.0 (holds); this run −1.0, −1.0, −1.0 (does not hold); the six
    pooled: mean 0.5, sd = sqrt((6.25 + 2.25 + 0.25 + 3 × 2.25) / 5) = sqrt(3.1) = 1.76 → not beyond the spread (3/6).
    Every other comparison is the same in both runs (the shipped-base row is left out). An earlier run of other
    sizes (quick mode's) is not compared."""
    earlier = [summary(k, 40.0, 45.0 - k, 42.0, 43.0, 42.0, 45.0) for k in range(3)]
    later = [summary(k, 40.0, 41.0, 42.0, 43.0, 42.0, 45.0) for k in range(3)]
    sizes = {**Sizes().__dict__}
    page = scarce_page.markdown(later, sizes, minutes=20, quick=False,
                                earlier={"run": "of yesterday", "sizes": sizes, "seeds": earlier})
    assert "The page's earlier run, of yesterday, built other models" in page
    assert "| **GRPO against its control** | +2.0 ± 1.0 | **holds** | -1.0 ± 0.0 | **does not hold** | +0.5 ± 1.8 | " \
           "**not beyond the spread (3/6 seeds above)** |" in page
    # in both: GRPO, DPO + SFT and both controls against the base, DPO + SFT against its control (+1.0), both
    # after-control runs against the one-pass control (+3.0); in neither: the four against the longer control
    assert "7 of the 12 changes hold in both runs, 1 in one only (GRPO against its control (earlier run)), 4 in " \
           "neither." in page
    assert "scarce-SFT base against the shipped base | +" not in page.split("## The earlier run")[1].split("##")[0]
    quick = {**sizes, "steps": 2}
    assert "## The earlier run" not in scarce_page.markdown(later, sizes, minutes=20, quick=False)
    assert "## The earlier run" not in scarce_page.markdown(
        later, sizes, minutes=20, quick=False, earlier={"run": "x", "sizes": quick, "seeds": earlier})


def test_grpo_after_the_control_at_equal_steps_takes_the_verdict_on_grpo():
    """GRPO after the control for as many steps as the longer control (45.0, 64.5, 55.0): 46.0, 66.0, 56.0 → +1.0,
    +1.5, +1.0 → +1.2 ± 0.3, holds; so "Together" names GRPO, though at 100 updates it was level (+0.0 on every seed).
    At 44.0, 63.5, 54.0 (−1.0 on every seed) the longer control stays ahead; a run without it has no such row."""
    ahead = [summary(k, 40.0 + 10 * k, 45.0, 42.0, 43.0, 42.0, (45.0, 64.5, 55.0)[k],
                     rft_then_grpo_equal=(46.0, 66.0, 56.0)[k]) for k in range(3)]
    page = scarce_page.markdown(ahead, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "| **GRPO from the control's model, equal steps in all, against the longer control** | +1.0 | +1.5 | " \
           "+1.0 | +1.2 ± 0.3 | **holds** |" in page
    assert "**The same for 200 updates**, as many steps in all as the longer control" in page
    assert "+1.2 ± 0.3 pp against the longer control (holds).** 40% of its groups scored the same. Given as many " \
           "steps, comparing answers after imitation beats more imitation" in page
    assert "After the control, GRPO adds to it beyond more passes of SFT on the same answers; DPO + SFT" in page
    behind = [summary(k, 40.0 + 10 * k, 45.0, 42.0, 43.0, 42.0, (45.0, 64.5, 55.0)[k],
                      rft_then_grpo_equal=(44.0, 63.5, 54.0)[k]) for k in range(3)]
    page = scarce_page.markdown(behind, {**Sizes().__dict__}, minutes=20, quick=False)
    assert "Even given as many steps, more passes of SFT on the same answers stay ahead." in page
    assert "Neither adds anything measurable after the control" in page
    page = scarce_page.markdown([summary(k, 40.0, 45.0, 42.0, 43.0, 42.0, 45.0) for k in range(3)],
                                {**Sizes().__dict__}, minutes=20, quick=False)
    assert "equal steps in all" not in page and "The same for 200 updates" not in page


def test_grpo_with_the_sft_term_reads_against_its_control():
    """Bases 40, 50, 60; GRPO's control 42, 52, 62; the longer control 45, 55, 65. GRPO + SFT term at 43.0, 53.0, 62.5:
    − its control +1.0, +1.0, +0.5 → +0.8 ± 0.3, holds; − the base +3.0, +3.0, +2.5 → +2.8 ± 0.3, holds; − the
    longer control −2.0, −2.0, −2.5 → −2.2 ± 0.3. Its groups with no signal: mean of 0.3 and 0.2 = 25 %. At 41, 51,
    61 the control is ahead on every seed (−1.0 ± 0.0); at 43, 51, 62 it is level (+1.0, −1.0, +0.0). A run without
    the row has neither its set-up line nor its bullet."""
    at = lambda term: [summary(k, 40.0 + 10 * k, 45.0, 42.0 + 10 * k, 43.0, 42.0, 45.0 + 10 * k, grpo_sft=term[k])
                       for k in range(3)]
    page = scarce_page.markdown(at((43.0, 53.0, 62.5)), {**Sizes().__dict__}, minutes=20, quick=False)
    assert "| **GRPO + SFT term against its control** | +1.0 | +1.0 | +0.5 | +0.8 ± 0.3 | **holds** |" in page
    assert "| GRPO + SFT term on its right answers (λ 1) | 43.0 | 53.0 | 62.5 | 52.8 ± 9.8 |" in page
    assert "- **GRPO + SFT term: +2.8 ± 0.3 pp over its base (holds), +0.8 ± 0.3 pp against its control (holds), " \
           "-2.2 ± 0.3 pp against the longer control" in page
    assert "25% of its groups scored the same. With both signals" in page and "- **GRPO + SFT term**: GRPO" in page
    page = scarce_page.markdown(at((41.0, 51.0, 61.0)), {**Sizes().__dict__}, minutes=20, quick=False)
    assert "The control is still ahead on every seed." in page
    page = scarce_page.markdown(at((43.0, 51.0, 62.0)), {**Sizes().__dict__}, minutes=20, quick=False)
    assert "The term brings GRPO level with its control" in page
    page = scarce_page.markdown(at((None,) * 3), {**Sizes().__dict__}, minutes=20, quick=False)
    assert "GRPO + SFT term" not in page


def test_the_committed_page_matches_its_summaries():
    committed = ROOT / "docs" / "scarce" / "summaries.json"
    if not committed.exists():
        pytest.skip("docs/scarce.md not written yet")
    data = json.loads(committed.read_text())
    fresh = scarce_page.markdown(data["seeds"], data["sizes"], minutes=0, quick=False,
                                 earlier=scarce_page.load_earlier())
    assert _body(fresh) == _body((ROOT / "docs" / "scarce.md").read_text())


@pytest.mark.slow
def test_quick_mode_writes_the_page_from_its_own_runs(tmp_path):
    env = {**clean_env(), "PYTHON": sys.executable}
    res = subprocess.run(["bash", "scripts/scarce.sh", "--quick", "--runs", str(tmp_path / "runs"), "--docs",
                          str(tmp_path / "docs")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    data = json.loads((tmp_path / "docs" / "scarce" / "summaries.json").read_text())
    (seed,) = data["seeds"]
    assert "model.path=builtin:arith-base/0/40/64 " in (tmp_path / "runs" / "seed0" / "commands.log").read_text()
    assert seed["base_loss"] and seed["candidates"]["pairs"] > 0
    for run in ("grpo", "rft_grpo"):  # validation accuracy at the start and after each of the 2 steps
        assert [step for step, _ in seed[run]["valid"]] == [0, 1, 2] and 0 <= seed[run]["score45"] <= 1
    assert seed["rft_long"]["valid"][-1][0] == 4  # 2 passes of GRPO's control's 2 steps
    assert seed["rft_then_grpo"]["zero_std"] and 0 <= seed["rft_then_grpo"]["score45"] <= 1
    recipe = (tmp_path / "runs" / "seed0" / "rft_then_grpo" / "recipe.yaml").read_text()
    assert str(tmp_path / "runs" / "seed0" / "rft_grpo" / "model") in recipe  # it starts from the control's model
    # GRPO after the control for as many steps in all as the longer control: (2 passes - 1) × 2 updates
    assert seed["rft_then_grpo_equal"]["valid"][-1][0] == 2 and seed["rft_then_grpo_equal"]["zero_std"]
    recipe = (tmp_path / "runs" / "seed0" / "rft_then_grpo_equal" / "recipe.yaml").read_text()
    assert str(tmp_path / "runs" / "seed0" / "rft_grpo" / "model") in recipe
    recipe = (tmp_path / "runs" / "seed0" / "rft_then_dpo_sft" / "recipe.yaml").read_text()
    assert str(tmp_path / "runs" / "seed0" / "rft_grpo" / "model") in recipe and "lr: 3.0e-05" in recipe
    log = (tmp_path / "runs" / "seed0" / "commands.log").read_text()  # its pairs come from the control's answers
    assert f"model.path={tmp_path / 'runs' / 'seed0' / 'rft_grpo' / 'model'} --set data.train=builtin:arith/prompts/" \
           "train/64/7" in log
    assert seed["rft_candidates"]["pairs"] > 0 and seed["rft_then_dpo_sft"]["valid"][-1][0] > 0
    # DPO + SFT's passes set its length; its control takes as many steps
    assert seed["dpo_sft"]["valid"][-1][0] == seed["rft"]["valid"][-1][0] > 0
    assert seed["grpo"]["zero_std"] and seed["grpo"]["train_accuracy"]
    recipe = (tmp_path / "runs" / "seed0" / "grpo_sft" / "recipe.yaml").read_text()  # GRPO's shape, with the term
    assert "sft_weight: 1.0" in recipe and "group_size: 4" in recipe and seed["grpo_sft"]["valid"][-1][0] == 2
    # docs/paper.md's runs at 1,024 an update, on 4 × the page's problems: each 2 steps, the control at its own lr
    assert seed["candidates_1024"]["problems"] == 256 and seed["grpo_1024_sft"]["zero_std"]
    assert [seed[run]["valid"][-1][0] for run in ("grpo_1024_sft", "rft_1024", "dpo_sft_1024")] == [2, 2, 2]
    assert "lr: 0.0008" in (tmp_path / "runs" / "seed0" / "rft_1024" / "recipe.yaml").read_text()
    # then the control and GRPO + SFT term for the longer control's steps (2 passes × 2 in quick mode)
    assert [seed[run]["valid"][-1][0] for run in ("rft_1024_long", "grpo_1024_sft_long")] == [4, 4]
    assert "lr: 0.0008" in (tmp_path / "runs" / "seed0" / "rft_1024_long" / "recipe.yaml").read_text()
    assert "data.train=builtin:arith/prompts/train/256/7" in log
    fresh = scarce_page.markdown(data["seeds"], data["sizes"], minutes=0, quick=True)
    assert _body(fresh) == _body((tmp_path / "docs" / "scarce.md").read_text())


def _body(page: str) -> str:
    return page.split("## Set-up", 1)[1]  # the header holds the run time
