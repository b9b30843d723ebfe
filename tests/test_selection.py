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
