"""Choosing settings without the test set: the validation split, accuracy during training, `train.keep_best`, the
judge's best answers (the continued-SFT control), sweeps over any key ranked by a validation metric, the rounds
script, and a proof that this whole selection path never reads a test problem."""

import json
import subprocess
import sys

import pytest
import torch

from prefopt import builtin
from prefopt.loop import train
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from prefopt.tasks import arith
from tests.conftest import ROOT, clean_env, read_rows, run_cli, write_jsonl
from tests.test_loop import wandb_history

ACCURACY = ["eval.prompts=builtin:arith/prompts/valid/24", "eval.max_prompts=24", "eval.max_new_tokens=12",
            "eval.every=2", "eval.probe_size=0", "eval.max_batches=2", "log.every=2", "log.console=false",
            "optim.schedule=constant", "optim.lr=0.01", "optim.warmup_steps=0"]


def test_train_valid_and_test_share_no_problem():
    """A tenth of all problems (by a hash of the prompt) is valid, another tenth test; each split draws only its own."""
    prompts = {split: {r["prompt"] for r in arith.records("prompts", split, 3000)} for split in arith.SPLITS}
    assert not prompts["train"] & prompts["valid"] and not prompts["valid"] & prompts["test"]
    assert not prompts["train"] & prompts["test"]
    assert all(arith.split_of(p) == split for split, ps in prompts.items() for p in ps)
    assert 1000 < len(prompts["valid"]) < 2300  # ~2,000 of the ~20,500 problems; 3,000 draws repeat some


def logps(model_dir, sequences) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(sequences).logits[:, :-1].log_softmax(-1)
    return logits.gather(-1, sequences[:, 1:, None]).squeeze(-1).sum(-1)


def test_accuracy_is_logged_during_training_and_keep_best_keeps_that_steps_weights(tmp_path):
    """eval/accuracy and eval/score (the rule judge on greedy answers to 24 validation problems) at every
    evaluation, in metrics.jsonl and W&B; `train.keep_best: eval/score` leaves the best evaluation's weights in
    model/ (the same log-probs as a run stopped at that step) and the last step's in last/."""
    wandb_dir = tmp_path / "wandb"
    wandb_dir.mkdir()
    res = run_cli("dpo", "-r", "recipes/tiny/dpo.yaml", "--set", f"train.output_dir={tmp_path / 'best'}",
                  "--set", "train.max_steps=8", "--set", "train.keep_best=eval/score", "--set", "log.wandb=true",
                  *[x for s in ACCURACY for x in ("--set", s)],
                  env={"WANDB_DIR": str(wandb_dir), "WANDB_API_KEY": "", "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "train.keep_best: model/ holds step" in res.stdout
    rows = read_rows(tmp_path / "best")
    evals = [(r["step"], r["eval/score"]) for r in rows if "eval/score" in r]
    assert [s for s, _ in evals] == [0, 2, 4, 6, 8] and all("eval/accuracy" in r for r in rows if "eval/score" in r)
    best = max(evals, key=lambda e: e[1])[0]  # the first of the best: a tie is no improvement
    assert 0 < best < 8, evals  # (measured: step 2, where the model first answers with numbers)
    assert [r["best/step"] for r in rows if "best/step" in r][-1] == best
    assert wandb_history(next(wandb_dir.glob("wandb/offline-run-*/run-*.wandb")))["eval/score"] == [e[1] for e in evals]
    stopped = load_recipe("recipes/tiny/dpo.yaml", [f"train.output_dir={tmp_path / 'stopped'}",
                                                      f"train.max_steps={best}", *ACCURACY])
    straight = load_recipe("recipes/tiny/dpo.yaml", [f"train.output_dir={tmp_path / 'straight'}", "train.max_steps=8",
                                                       *ACCURACY])
    for recipe in (stopped, straight):
        train(recipe, OBJECTIVES["dpo"])
    sequences = torch.randint(3, 200, (4, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(logps(tmp_path / "best" / "model", sequences),
                               logps(tmp_path / "stopped" / "model", sequences), atol=1e-5, rtol=0)
    torch.testing.assert_close(logps(tmp_path / "best" / "last" / "model", sequences),
                               logps(tmp_path / "straight" / "model", sequences), atol=1e-5, rtol=0)
    assert not torch.allclose(logps(tmp_path / "best" / "model", sequences),
                              logps(tmp_path / "straight" / "model", sequences))
    assert not (tmp_path / "best" / "best").exists()


def test_keep_best_names_a_metric_the_run_logs(tmp_path):
    res = run_cli("dpo", "-r", "recipes/tiny/dpo.yaml", "--set", f"train.output_dir={tmp_path}",
                  "--set", "train.keep_best=eval/accuracy", "--set", "train.max_steps=2")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "train.keep_best: `eval/accuracy` is not among the evaluation's metrics" in res.stderr
    assert "eval/accuracy needs eval.prompts" in res.stderr


def test_judge_writes_the_best_answers_for_the_control(tmp_path):
    """best.jsonl holds each prompt's best candidate when it scores at least judge.best_min_score (4: right)."""
    gens = write_jsonl(tmp_path / "g.jsonl", [
        {"id": "0", "prompt": "Q: 2 + 2 = ?\n", "answer": "4", "candidates": ["Answer: 5", "2 + 2 = 4. Answer: 4"]},
        {"id": "1", "prompt": "Q: 3 + 3 = ?\n", "answer": "6", "candidates": ["Answer: 7", "Answer: 8"]},
        {"id": "2", "prompt": "Q: 1 + 1 = ?\n", "answer": "2", "candidates": ["Answer: 2", "Answer: 2"]}])
    import prefopt

    counts = prefopt.judge("recipes/demo/judge.yaml", [f"judge.input={gens}", f"train.output_dir={tmp_path / 'j'}"])
    best = [json.loads(line) for line in (tmp_path / "j" / "best.jsonl").read_text().splitlines()]
    assert [(b["id"], b["completion"], b["score"]) for b in best] == [("0", "2 + 2 = 4. Answer: 4", 5),
                                                                        ("2", "Answer: 2", 4)]
    assert counts["best answers"] == 2 and counts["kept"] == 1  # prompt 2's candidates are all equal: no pair


@pytest.mark.slow
def test_a_sweep_over_two_keys_is_ranked_by_a_validation_metric(tmp_path):
    """scripts/sweep.sh runs the grid lr × steps, collect_sweep.py ranks it by eval/score's best evaluation and
    prints the winner's overrides."""
    out = tmp_path / "sweep"
    sets = [x for s in ACCURACY + ["eval.every=1"] for x in ("--set", s)]
    res = subprocess.run(["bash", "scripts/sweep.sh", "--recipe", "recipes/tiny/dpo.yaml", "--param", "optim.lr",
                          "--values", "0.01 0.0001", "--param", "train.max_steps", "--values", "1 2", "--out", str(out),
                          "--name", "pytest_grid", *sets], cwd=ROOT, env={**clean_env(), "PYTHON": sys.executable},
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if (p / "model").is_dir()) == [
        "lr=0.0001,max_steps=1", "lr=0.0001,max_steps=2", "lr=0.01,max_steps=1", "lr=0.01,max_steps=2"]
    got = subprocess.run([sys.executable, "scripts/collect_sweep.py", str(out), "--metric", "eval/score"], cwd=ROOT,
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    rows = [r for r in (out / "sweep.csv").read_text().splitlines()[1:] if r]
    best = [float(r.split(",")[-2]) for r in rows]
    assert best == sorted(best, reverse=True) and len(rows) == 4  # ranked, best first
    winner = got.stdout.split("winner: ")[1].splitlines()[0]
    assert winner.startswith("--set optim.lr=") and "--set train.max_steps=" in winner


def test_two_on_policy_rounds_in_quick_mode(tmp_path):
    """Round 1 samples from round 0's model; each round's pairs, accuracy and 3D metrics are tabulated."""
    res = subprocess.run([sys.executable, "scripts/onpolicy_rounds.py", "--recipe", "recipes/demo/onpolicy.yaml",
                          "--prompts", "builtin:arith/prompts/train/16/{round}", "--rounds", "2",
                          "--out", str(tmp_path), "--set", "model.path=builtin:tiny", "--set", "generate.n=4",
                          "--set", "generate.max_new_tokens=8", "--set", "train.micro_batch_size=4",
                          "--set", "optim.lr=0.01", "--set", "eval.prompts=builtin:arith/prompts/valid/8",
                          "--set", "eval.max_new_tokens=8"], cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "rounds.json").read_text())
    assert [s["round"] for s in summary] == [0, 1] and all(s["pairs"] > 0 for s in summary)
    generated = [json.loads(line) for line in (tmp_path / "round1/generate/recipe.yaml").read_text().splitlines()[:0]]
    assert generated == [] and f"path: {tmp_path / 'round0/train/model'}" in \
        (tmp_path / "round1/generate/recipe.yaml").read_text()
    trained = (tmp_path / "round1/train/recipe.yaml").read_text()
    assert f"ref_path: {tmp_path / 'round0/train/model'}" in trained  # reference: the previous round's model
    assert all(s["eval/3d/delta_rejected"] is not None and s["eval/accuracy"] is not None for s in summary)
    assert "| round | pairs |" in res.stdout and (tmp_path / "rounds.png").stat().st_size > 5000


def test_the_selection_path_never_opens_the_test_split(tmp_path, monkeypatch):
    """Sampling pairs, training with accuracy on the validation split, keep_best and ranking runs: with every test
    problem made unreadable (arith.records refuses the split, and its cached file is moved away), all of it runs."""
    real = arith.records

    def no_test(kind, split, n, seed=0):
        assert split != "test", "the selection path asked for test problems"
        return real(kind, split, n, seed)

    monkeypatch.setattr(arith, "records", no_test)
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path / "cache"))  # no test file already written
    monkeypatch.setattr(builtin, "DATA_SIZES", {k: v for k, v in builtin.DATA_SIZES.items() if k != "test"})
    import prefopt

    gens = prefopt.generate("recipes/demo/generate.yaml", ["model.path=builtin:tiny", "generate.max_prompts=8",
                                                            "generate.max_new_tokens=8", f"train.output_dir={tmp_path / 'g'}"])
    prefopt.judge("recipes/demo/judge.yaml", [f"judge.input={gens}", f"train.output_dir={tmp_path / 'j'}"])
    pairs = "builtin:arith/pairs/train/32"
    run = prefopt.train("recipes/tiny/dpo.yaml", [f"data.train={pairs}", "data.eval=builtin:arith/pairs/valid/16",
                                                  "train.max_steps=4", "train.keep_best=eval/score",
                                                  f"train.output_dir={tmp_path / 'run'}", *ACCURACY])
    assert any("eval/accuracy" in r for r in read_rows(run)) and (run / "model" / "config.json").exists()
    with pytest.raises(Exception, match="unknown arith split|test"):
        builtin.resolve("builtin:arith/prompts/test")


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
