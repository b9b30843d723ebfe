"""scripts/select.sh's parts in quick mode and scripts/select_report.py's page from their runs: the grids each part
runs on the validation split, their tables and rankings, and `--keep`, which updates one part of an earlier page."""

import json
import subprocess
import sys

import pytest

from prefopt.recipe import load_recipe
from tests.conftest import ROOT, clean_env, read_rows


@pytest.mark.slow
def test_select_sh_ppo_part_in_quick_mode_and_its_table(tmp_path):
    """`scripts/select.sh --quick --part ppo` runs its grid (the demo's PPO; 8× the responses an update × policy steps
    × lr; the winner longer) on validation, and select_report.py writes its table from those runs: every run's
    accuracy from the start, its swept settings in the label, and the PPO runs ranked with the other RL runs."""
    env = {**clean_env(), "PYTHON": sys.executable}
    res = subprocess.run(["bash", "scripts/select.sh", "--quick", "--part", "ppo", "--out", str(tmp_path / "select")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    runs = sorted(p.parent.relative_to(tmp_path / "select" / "ppo").as_posix()
                  for p in (tmp_path / "select" / "ppo").glob("*/*/metrics.jsonl"))
    assert runs == ["demo/lr=5e-5", "long/max_steps=3", "wide/grad_accum=1,lr=2e-4", "wide/grad_accum=1,lr=5e-5",
                    "wide/grad_accum=8,lr=2e-4", "wide/grad_accum=8,lr=5e-5"]
    for run in runs:  # each scored on validation from its start to its end
        steps = [r["step"] for r in read_rows(tmp_path / "select" / "ppo" / run) if "eval/accuracy" in r]
        assert steps[0] == 0 and steps[-1] == (3 if run.startswith("long") else 2)
    res = subprocess.run([sys.executable, "scripts/select_report.py", str(tmp_path / "select"), str(tmp_path / "docs")],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    page = (tmp_path / "docs" / "selection.md").read_text()
    assert "| responses an update 32, grad_accum 8, lr 5e-05, updates 3 | " in page  # quick mode: 32 an update
    assert page.count("| responses an update ") == 6 and "- **rl**: PPO, responses an update " in page
    assert "Not in this run (`scripts/select.sh --part`)" in page  # the parts it left out say so


@pytest.mark.slow
def test_select_sh_wide_part_in_quick_mode_and_its_table(tmp_path):
    """`scripts/select.sh --quick --part wide` runs GRPO at its wider rollouts × lr, the same with the SFT term × lr
    and × λ, the demo's GRPO for reference, the control at that size on its own judged-best answers × lr, and DPO +
    SFT on the pairs of the same candidates × λ × lr, each on validation from its start; select_report.py ranks
    GRPO's runs (the SFT term's among them) and DPO + SFT's as candidates and the control apart, as the bar."""
    env = {**clean_env(), "PYTHON": sys.executable}
    select = tmp_path / "select"
    res = subprocess.run(["bash", "scripts/select.sh", "--quick", "--part", "wide", "--out", str(select)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    runs = sorted(p.parent.relative_to(select).as_posix() for p in select.glob("*/*/metrics.jsonl"))
    assert runs == ["grpo_wide/lr=1e-4", "grpo_wide/rollout_prompts=8", "grpo_wide/sft_weight=1.0,lr=1e-4",
                    "grpo_wide/sft_weight=3.0", "wide_control/lr=1e-4", "wide_dpo_sft/beta=0.03",
                    "wide_dpo_sft/sft_weight=4.0,lr=1e-4"]
    for run in runs:  # each scored on validation from its start to its end (2 steps in quick mode)
        steps = [r["step"] for r in read_rows(select / run) if "eval/accuracy" in r]
        assert steps[0] == 0 and steps[-1] == 2
    control = (select / "wide_control" / "lr=1e-4" / "recipe.yaml").read_text()
    assert str(select / "wide_candidates" / "best.jsonl") in control  # its data: the judged-best answers
    dpo = (select / "wide_dpo_sft" / "sft_weight=4.0,lr=1e-4" / "recipe.yaml").read_text()
    assert str(select / "wide_candidates" / "pairs.jsonl") in dpo  # its data: the same candidates' pairs
    res = subprocess.run([sys.executable, "scripts/select_report.py", str(select), str(tmp_path / "docs")],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    page = (tmp_path / "docs" / "selection.md").read_text()
    assert page.count("| GRPO, lr ") == 4 and page.count("sft_weight 1.0 | 0.") == 1
    assert page.count("| GRPO, lr 0.0004, rollout_prompts 8, group_size 2, sft_weight 3.0 | 0.") == 1
    assert "- **rl, wider rollouts**: GRPO, lr " in page
    assert "- **preference, on the wider control's candidates**: DPO + SFT on the same candidates' pairs, sft_weight " \
        "4.0, lr " in page
    assert "- **control at the wider rollouts' size: the bar (not a candidate)**: control: SFT on the best answers, " \
        "lr 0.0001 (" in page


def test_select_sh_names_its_parts_and_refuses_others(tmp_path):
    """`scripts/select.sh --part` takes pairs, rounds, grpo, wide or ppo (a search can re-run one part); anything else stops
    before a run starts, naming the choices."""
    res = subprocess.run(["bash", "scripts/select.sh", "--out", str(tmp_path), "--part", "dpo"], cwd=ROOT,
                         env={**clean_env(), "PYTHON": sys.executable}, capture_output=True, text=True)
    assert res.returncode == 2 and "--part takes pairs, rounds, grpo, wide or ppo, not 'dpo'" in res.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_select_sh_rounds_part_in_quick_mode_and_its_table(tmp_path):
    """`scripts/select.sh --quick --part rounds` runs each family × lr for its rounds, then the shipped DPO + SFT
    recipe as it stands (6 passes, λ 8) and the control at its passes on each round's judged-best answers;
    select_report.py tables every run and adds the recipe's per-round table (pairs, accuracy, 3D metrics) and plot."""
    select = tmp_path / "select"
    res = subprocess.run(["bash", "scripts/select.sh", "--quick", "--part", "rounds", "--out", str(select)], cwd=ROOT,
                         env={**clean_env(), "PYTHON": sys.executable}, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    families = ["rounds_dpo_sft", "rounds_dpop", "rounds_ipo", "rounds_recipe", "rounds_rft", "rounds_rft_recipe"]
    assert sorted(p.parent.parent.name for p in select.glob("*/lr=1e-4/rounds.json")) == families
    for family in families:  # quick mode: 2 rounds, the second from the first one's model
        assert [r["round"] for r in json.loads((select / family / "lr=1e-4" / "rounds.json").read_text())] == [0, 1]
    recipe = load_recipe(select / "rounds_recipe" / "lr=1e-4" / "round1" / "train" / "recipe.yaml")
    assert (recipe.train.epochs, recipe.loss.sft_weight, recipe.optim.lr) == (6, 8.0, 1e-4)
    assert recipe.model.path == str(select / "rounds_recipe" / "lr=1e-4" / "round0" / "train" / "model")
    control = load_recipe(select / "rounds_rft_recipe" / "lr=1e-4" / "round0" / "train" / "recipe.yaml")
    assert control.train.epochs == 6 and control.data.train.endswith("round0/judge/best.jsonl")
    res = subprocess.run([sys.executable, "scripts/select_report.py", str(select), str(tmp_path / "docs")], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    page = (tmp_path / "docs" / "selection.md").read_text()
    assert page.count("| DPO + SFT, the recipe (6 passes, λ 8) | 1e-4 | ") == 1
    assert page.count("| control: SFT on the best answers, 6 passes | 1e-4 | ") == 1
    assert "| round | pairs | accuracy before | eval/accuracy | eval/3d/delta_chosen |" in page
    assert (tmp_path / "docs" / "selection" / "rounds.png").stat().st_size > 0
    assert "- **control over three rounds: the bar (not a candidate)**: control: SFT on the best answers" in page


def test_select_report_keep_updates_one_part_and_keeps_the_others(tmp_path):
    """`select_report.py --keep PAGE` after `select.sh --part rounds`: the rounds section comes from this run, a
    section the earlier page holds a run of is kept verbatim (marked), one it does not hold says it was not run, and
    each family is ranked over both. Worked numbers: the earlier page ranks three rounds of DPOP at 0.450 and DPO + SFT
    at 0.300; this run's DPO + SFT ends at 0.500 (replacing the earlier run of that name), so the family reads 0.500
    then 0.450; its control ends at 0.420, a bar of its own; the one-round families are the earlier page's. Keeping
    the new page again writes the same page."""
    earlier = tmp_path / "earlier.md"
    earlier.write_text("\n".join([
        "# Choosing", "", "intro", "", "## One pass over one round of on-policy pairs", "", "description", "",
        "| loss | lr | validation accuracy: start → best (step) → end |", "|---|---|---|",
        "| DPO | 0.0001 | 0.369 → 0.369 (0) → 0.309 |", "", "## Three on-policy rounds", "", "description", "",
        "Not in this run (`scripts/select.sh --part`); see git.", "", "## What was chosen", "", "rule", "",
        "- **preference**: DPO + SFT, 6 passes, λ 8.0, lr 1e-4 (0.427); then DPO, 1 pass, lr 1e-4 (0.309).",
        "- **preference, three rounds**: DPOP, 3 rounds, lr 3e-5 (0.450); then DPO + SFT, 3 rounds, lr 1e-4 (0.300).",
        "- **rl**: GRPO, lr 0.0001 (0.487).", ""]))
    select = tmp_path / "select"
    for family, accs in {"rounds_dpo_sft": [0.30, 0.45, 0.50], "rounds_rft": [0.31, 0.40, 0.42]}.items():
        (select / family / "lr=1e-4").mkdir(parents=True)
        rounds = [{"round": r, "start/eval/accuracy": 0.369, "eval/accuracy": a} for r, a in enumerate(accs)]
        (select / family / "lr=1e-4" / "rounds.json").write_text(json.dumps(rounds))

    def report(page, docs):
        res = subprocess.run([sys.executable, "scripts/select_report.py", str(select), str(docs), "--keep", str(page),
                              "--minutes", "30"], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-3000:]
        return (docs / "selection.md").read_text()

    page = report(earlier, tmp_path / "docs")
    assert "`scripts/select.sh --part rounds` ran in 30 minutes" in page and "kept, as they were" in page
    assert "| DPO + SFT | 1e-4 | 0.369 → 0.300 → 0.450 → 0.500 |" in page
    assert "| control: SFT on the best answers | 1e-4 | 0.369 → 0.310 → 0.400 → 0.420 |" in page
    kept = "_Kept from the page this run updated (`select_report.py --keep`): not run this time._"
    assert f"{kept}\n\n| loss | lr | validation accuracy: start → best (step) → end |\n|---|---|---|\n" \
        "| DPO | 0.0001 | 0.369 → 0.369 (0) → 0.309 |\n\n## More passes" in page
    assert page.count(kept) == 1 and page.count("Not in this run") == 4  # passes, GRPO, wide, PPO
    assert "- **preference**: DPO + SFT, 6 passes, λ 8.0, lr 1e-4 (0.427); then DPO, 1 pass, lr 1e-4 (0.309)." in page
    assert "- **preference, three rounds**: DPO + SFT, 3 rounds, lr 1e-4 (0.500); then DPOP, 3 rounds, lr 3e-5 " \
        "(0.450)." in page
    assert "- **control over three rounds: the bar (not a candidate)**: control: SFT on the best answers, 3 rounds, " \
        "lr 1e-4 (0.420)." in page
    assert "- **rl**: GRPO, lr 0.0001 (0.487)." in page
    assert report(tmp_path / "docs" / "selection.md", tmp_path / "again") == page
