"""docs/paper.md: the claims' statistics on worked numbers, the committed page against its summaries, quick mode."""

import json
import subprocess
import sys

import pytest
import yaml

from prefopt.experiments import paper_report, paper_scarce, paper_selected, paper_settings
from tests.conftest import ROOT, clean_env


def summary(seed=0, s1=40.0, others=(30.0, 31.0, 29.0), base=35.0, ppo=45.0, flex=41.0, sweep=(42.0, 38.0)):
    """A seed's summary with chosen 4-5-point rates (%); the other numbers are small hand-picked values."""
    acc = lambda pct: {"score5": pct / 100, "score45": pct / 100}
    scen = lambda pct, rej_change: {**acc(pct), "logp_chosen_base": -1.0, "logp_chosen": -1.2, "logp_rejected_base": -2.0,
                                    "logp_rejected": -2.0 + rej_change, "delta_chosen": -3.0, "delta_rejected": -9.0,
                                    "curves": {}}
    scenarios = {"scenario1": scen(s1, -0.5)}
    scenarios.update({f"scenario{k}": scen(p, -0.8) for k, p in zip((2, 3, 4), others)})
    return {"seed": seed, "base": acc(base), "weak": acc(5.0), "scenarios": scenarios,
            "regularisers": {"dpo_sft": {**scen(38.0, 0.0), "delta_chosen": 1.5}, "flex_beta": scen(flex, -0.3),
                             "ipo": scen(39.0, -0.1), "slic": {**scen(39.0, -0.1), "delta_chosen": None}},
            "sweep": {"0.05": scen(sweep[0], -0.3), "0.01": scen(sweep[1], -0.1)},
            "stability": {"rm": [[0, 0.5], [5, 0.6], [10, 0.6]], "dpo": [[0, 0.5], [5, 0.8], [10, 0.6]]},
            "ppo": {**acc(ppo), "curves": {}}, "pairs": {}, "settings": {}, "paper_control": acc(base + 1),
            "selected": {"dpo_sft": acc(base + 4), "rft": acc(base + 3), "grpo": acc(base + 5),
                         "rft_grpo": acc(base + 2), "grpo_sft": acc(base + 6), "ppo_rule": acc(base - 1),
                         "ppo_256": acc(base + 1),
                         "rft_then_grpo": acc(base + 7), "rft_then_dpo_sft": acc(base + 5), "rft_long": acc(base + 6),
                         "grpo_1024": acc(base + 8), "rft_1024": acc(base + 7), "grpo_1024_sft": acc(base + 10),
                         "dpo_sft_1024": {**acc(base + 5), "pairs": 600, "curves": {
                             "eval/3d/delta_chosen": [[100, 0.2]], "eval/3d/delta_rejected": [[100, -3.0]]}},
                         "rft_then_grpo_equal": acc(base + 9)}}


def test_claim_statistics_on_worked_numbers():
    """Worked by hand from `summary()`:
    on-policy best: 40 - max(30, 31, 29) = +9; over the base: 40 - 35 = +5;
    slowest rejected decline: -0.5 - max(-0.8, -0.8, -0.8) = +0.3; degradation: -(-3.0) = +3;
    DPO + SFT chosen above the reference: +1.5; flex-β over DPO: 41 - 40 = +1;
    best β⁻ among {0.1: 40, 0.05: 42, 0.01: 38} is 0.05, inside the range: +1;
    stability: DPO |0.5->0.8->0.6| = mean(30, 20) = 25 pp, RM mean(10, 0) = 5 pp: 25 - 5 = +20;
    PPO over DPO: 45 - 40 = +5.
    """
    values = [c["values"][0] for c in paper_report.claims([summary()])]
    assert values == pytest.approx([9.0, 5.0, 0.3, 3.0, 1.5, 1.0, 1.0, 20.0, 5.0])
    flipped = summary(seed=1, s1=28.0, sweep=(39.0, 41.0))  # best β⁻ now the smallest: the sweep claim fails
    verdicts = [c["verdict"] for c in paper_report.claims([summary(), flipped])]
    assert verdicts[0] == "mixed (1/2)" and verdicts[6] == "mixed (1/2)" and verdicts[4] == "holds"
    table = paper_report.claims_table([summary(), flipped])
    assert table.count("\n") == len(paper_report.CLAIMS) + 1 and "| +9.00 | -3.00 |" in table


def test_beats_its_base_and_its_control_on_worked_numbers():
    """Seeds with bases 35 and 30: DPO + SFT +4 on both (mean 4 ± 0, beyond: holds); its control +3, so it beats
    it by +1 on both; GRPO +5 against a control at +2: +3, GRPO + SFT term +6 against it: +4; from the control's
    model, GRPO (+7) against the longer control (+6): +1, DPO + SFT (+5) against it: -1 on both, does not hold;
    GRPO from it for as many steps in all (+9) against the longer control: +3 on both, holds;
    GRPO at 1,024 problems an update (+8) against its control at that size (+7): +1 on both, holds; with the SFT term
    (+10) against it: +3 on both, holds; DPO + SFT on the pairs of that control's candidates (+5) against it: -2.
    PPO at 256 responses an update: +1 over the base on both seeds (holds), -1 against GRPO's control (+2).
    Paper-settings DPO (40 on both seeds) against its control (SFT at base + 1: 36 and 31): +4 and +9, mean
    6.5 ± 3.5: holds. A second
    pair of seeds where DPO + SFT's margin over the base is +4 and -1 (mean 1.5 ± 3.5): not beyond the spread, 1 of
    2 seeds above."""
    table = paper_report.beats_table([summary(), summary(seed=1, base=30.0)])
    assert "| DPO (paper settings) beats SFT on the same chosen answers, one pass at the same lr | +4.0 | +9.0 | " \
        "+6.5 ± 3.5 | **holds** |" in table
    assert "| DPO + SFT, on-policy pairs (selected) | +4.0 | +4.0 | +4.0 ± 0.0 | **holds** |" in table
    assert "| PPO, rule reward (the demo's settings, 32 responses an update) | -1.0 | -1.0 | -1.0 ± 0.0 | " \
        "**does not hold** |" in table
    assert "| +1.0 | +1.0 | +1.0 ± 0.0 | **holds** |" in table and "| +3.0 | +3.0 | +3.0 ± 0.0 | **holds** |" in table
    assert "| GRPO + SFT term beats the same control | +4.0 | +4.0 | +4.0 ± 0.0 | **holds** |" in table
    assert "| PPO, rule reward, 256 responses an update (selected) | +1.0 | +1.0 | +1.0 ± 0.0 | **holds** |" in table
    assert "| PPO (256 responses an update) beats the same control (same problems and steps) | -1.0 | -1.0 | " \
        "-1.0 ± 0.0 | **does not hold** |" in table
    assert "| GRPO from the control's model beats the longer control (more SFT steps than both together) | +1.0 | " \
        "+1.0 | +1.0 ± 0.0 | **holds** |" in table
    assert "| DPO + SFT from the control's model beats the longer control | -1.0 | -1.0 | -1.0 ± 0.0 | **does not " \
        "hold** |" in table
    assert "| GRPO from the control's model, as many steps in all, beats the longer control | +3.0 | +3.0 | " \
        "+3.0 ± 0.0 | **holds** |" in table
    assert "| GRPO from the control's model, as many steps in all as the longer control | +9.0 | +9.0 | +9.0 ± 0.0 | " \
        "**holds** |" in table
    assert "| longer control: 3 passes over GRPO's problems' best answers | +6.0 | +6.0 | +6.0 ± 0.0 | **holds** |" \
        in table
    assert "| GRPO at 1,024 problems an update beats its control at that size (same problems, samples and steps) | " \
        "+1.0 | +1.0 | +1.0 ± 0.0 | **holds** |" in table
    assert "| GRPO + SFT term, 1,024 problems × 2 an update (selected) | +10.0 | +10.0 | +10.0 ± 0.0 | **holds** |" \
        in table
    assert "| GRPO + SFT term at 1,024 problems an update beats the same control | +3.0 | +3.0 | +3.0 ± 0.0 | " \
        "**holds** |" in table
    assert "| DPO + SFT on the pairs of those answers (selected) | +5.0 | +5.0 | +5.0 ± 0.0 | **holds** |" in table
    assert "| DPO + SFT on the pairs of the same candidates beats the same control (same samples and steps) | -2.0 | " \
        "-2.0 | -2.0 ± 0.0 | **does not hold** |" in table
    worse = summary(seed=1)
    worse["selected"]["dpo_sft"] = {"score5": 0.34, "score45": 0.34}
    table = paper_report.beats_table([summary(), worse])
    assert "| DPO + SFT, on-policy pairs (selected) | +4.0 | -1.0 | +1.5 ± 3.5 | **not beyond the spread (1/2 seeds " \
        "above)** |" in table


def test_a_run_the_summaries_predate_leaves_its_rows_out():
    """Summaries written before GRPO at 1,024 problems an update joined the harness: the page leaves its rows out (in
    both tables) instead of failing, and keeps every other row."""
    older = [summary(), summary(seed=1, base=30.0)]
    for s in older:
        for run in ("grpo_1024", "rft_1024", "grpo_1024_sft", "dpo_sft_1024"):
            del s["selected"][run]
    table = paper_report.beats_table(older)
    assert "1,024" not in table and "1,024" not in paper_report.tables(older)
    assert "| GRPO + SFT term beats the same control | +4.0 | +4.0 | +4.0 ± 0.0 | **holds** |" in table
    assert "1,024" in paper_report.beats_table([summary(), summary(seed=1, base=30.0)])


def test_the_held_out_set_is_every_test_problem_once(tmp_path, monkeypatch):
    """The pages' test set: with no count, each problem of the test split once (draws would repeat some)."""
    from prefopt import builtin
    from prefopt.tasks import arith

    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path))
    spec, count = paper_report.held_out_set(None)
    prompts = [json.loads(line)["prompt"] for line in open(builtin.resolve(spec))]
    assert count == len(prompts) == len(set(prompts)) == len(arith.every_problem("test"))
    assert all(arith.split_of(prompt) == "test" for prompt in prompts)
    assert f"{count:,} problems once" in paper_report.held_out_words(None)
    assert paper_report.held_out_set(40) == ("builtin:arith/sft/test/40/0", 40)
    assert "40 draws" in paper_report.held_out_words(40)


def test_committed_page_is_what_the_code_produces_from_its_summaries():
    summaries = json.loads((ROOT / "docs" / "paper" / "summaries.json").read_text())
    page = (ROOT / "docs" / "paper.md").read_text()
    assert len(summaries) >= 3, "docs/paper.md must come from at least three seeds"
    assert paper_report.claims_table(summaries) in page
    assert paper_report.beats_table(summaries) in page
    assert paper_report.tables(summaries) in page
    assert paper_settings.settings_table(summaries) in page
    assert "\n".join(paper_scarce.section(ROOT / "docs")) in page and "### On bases that have fitted" in page
    for figure in ("beta_sweep.png", "rm_vs_dpo.png", "dpo_vs_ppo_3d.png"):
        assert (ROOT / "docs" / "paper" / figure).exists()


def test_settings_table_names_each_selected_run_as_the_tables_do_and_reads_the_recipe_it_ran():
    assert set(paper_settings.SETTINGS) == {key for _, key in paper_report.SELECTED_RUNS}
    full, partial = summary(), summary(seed=1)
    del partial["selected"]["rft_long"]  # a page written before a run was added leaves its row out
    full["settings"]["selected"] = {"prompts": 16, "grpo_problems": 64, "grpo_steps": 2, "wide_problems": 32,
                                    "ppo_steps": 3, "long_passes": 3}  # quick mode's sizes: the table states them
    rows = paper_settings.settings_table([full, partial]).splitlines()[2:]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert names == [name for name, key in paper_report.SELECTED_RUNS if key in partial["selected"]]
    recipe = yaml.safe_load((ROOT / "recipes" / "demo" / "onpolicy.yaml").read_text())
    (dpo_sft,) = [row for row in rows if row.startswith("| DPO + SFT, on-policy pairs (selected) |")]
    assert f"{recipe['train']['epochs']} passes of DPO + SFT (λ {recipe['loss']['sft_weight']:g}," in dpo_sft
    assert "for 16 training problems" in dpo_sft
    (equal,) = [row for row in rows if row.startswith("| GRPO from the control's model, as many steps")]
    assert "The same for 4 updates" in equal  # the longer control's 3 × 2 steps, less the control's 2
    assert all(row.count(" | ") == 2 and "{" not in row for row in rows)  # three cells, every field filled


@pytest.mark.slow
def test_quick_mode_writes_the_page_from_its_own_runs(tmp_path):
    env = {**clean_env(), "PYTHON": sys.executable}
    res = subprocess.run(["bash", "scripts/paper.sh", "--quick", "--runs", str(tmp_path / "runs"), "--docs",
                          str(tmp_path / "docs")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    summaries = json.loads((tmp_path / "docs" / "paper" / "summaries.json").read_text())
    page = (tmp_path / "docs" / "paper.md").read_text()
    assert paper_report.claims_table(summaries) in page and paper_report.tables(summaries) in page
    assert paper_report.beats_table(summaries) in page
    (seed,) = summaries
    assert set(seed["selected"]) == {"dpo_sft", "rft", "grpo", "grpo_sft", "rft_grpo", "ppo_rule", "ppo_256",
                                     "rft_long", "rft_then_grpo", "rft_then_grpo_equal", "rft_then_dpo_sft",
                                     "grpo_1024", "rft_1024", "grpo_1024_sft", "dpo_sft_1024"}
    wide_control = (tmp_path / "runs" / "seed0" / "rft_1024" / "recipe.yaml").read_text()  # its own rate, its data
    assert "lr: 0.0008\n" in wide_control and str(tmp_path / "runs" / "seed0" / "candidates_1024" / "best.jsonl") in \
        wide_control
    assert seed["selected"]["rft_then_dpo_sft"]["pairs"] > 0  # pairs judged from the control's own candidates
    wide_dpo = (tmp_path / "runs" / "seed0" / "dpo_sft_1024" / "recipe.yaml").read_text()  # the control's candidates
    assert str(tmp_path / "runs" / "seed0" / "candidates_1024" / "pairs.jsonl") in wide_dpo
    assert "sft_weight: 4.0\n" in wide_dpo and seed["selected"]["dpo_sft_1024"]["pairs"] > 0
    control = str(tmp_path / "runs" / "seed0" / "rft_grpo" / "model")
    for run in ("rft_then_grpo", "rft_then_grpo_equal", "rft_then_dpo_sft"):  # each starts from the control's model
        assert f"path: {control}\n" in (tmp_path / "runs" / "seed0" / run / "recipe.yaml").read_text()
    steps = lambda run: max(json.loads(line)["step"] for line in
                            (tmp_path / "runs" / "seed0" / run / "metrics.jsonl").read_text().splitlines())
    # GRPO after the control, as many steps in all as the longer control: (its passes - 1) x GRPO's updates
    quick = paper_selected.QUICK
    assert steps("rft_then_grpo") == quick.grpo_steps
    assert steps("rft_then_grpo_equal") == (quick.long_passes - 1) * quick.grpo_steps
    # the selected PPO: GRPO's problems for GRPO's updates (its control's), and what its rollouts logged
    ppo = seed["selected"]["ppo_256"]
    assert steps("ppo_256") == quick.grpo_steps and ppo["responses"] == quick.grpo_steps * 32
    assert set(ppo["rollouts"]) == set(paper_selected.PPO_ROLLOUTS) and all(ppo["rollouts"].values())
    for run in ("grpo", "ppo_256"):
        recipe = (tmp_path / "runs" / "seed0" / run / "recipe.yaml").read_text()
        assert "train: builtin:arith/prompts/train/12800/7\n" in recipe
    generate = [line for line in (tmp_path / "runs" / "seed0" / "commands.log").read_text().splitlines()
                if line.startswith("$ prefopt generate") and "rft_onpolicy" in line]
    assert len(generate) == 1 and f"model.path={control} " in generate[0]  # its pairs are the control's own
    assert seed["selected"]["grpo_sft"]["rollouts"]["grpo/sft_frac"]
    by_operation = seed["base"]["by_operation"]  # the judged rate, split by operation over the same answers
    assert abs(sum(o["right"] * o["problems"] for o in by_operation.values()) /
               sum(o["problems"] for o in by_operation.values()) - seed["base"]["score45"]) < 1e-3
    assert seed["selected"]["rft_1024"]["samples_by_operation"]
    assert 0 <= seed["paper_control"]["score45"] <= 1 and seed["selected"]["grpo"]["rollouts"]["grpo/entropy"]
    assert set(seed["scenarios"]) == {"scenario1", "scenario2", "scenario3", "scenario4"}
    assert set(seed["regularisers"]) == {"dpo_sft", "ipo", "slic", "flex_beta"}
    assert seed["stability"]["rm"] and seed["stability"]["dpo"] and 0 <= seed["ppo"]["score45"] <= 1
    shared = {json.loads(line)["id"] for line in (tmp_path / "runs" / "seed0" / "pairs" / "scenario1" /
                                                   "pairs.jsonl").read_text().splitlines()}
    for k in (2, 3, 4):  # every scenario trains on scenario 1's prompts only
        rows = (tmp_path / "runs" / "seed0" / "pairs" / f"scenario{k}" / "pairs.shared.jsonl").read_text().splitlines()
        assert {json.loads(line)["id"] for line in rows} <= shared
