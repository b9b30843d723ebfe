"""The run directory: its command recorded in recipe.yaml, --resume of another command's directory refused, an
output_dir that is a file refused in one line, and the recipe's combination rules checked before any model loads."""

from __future__ import annotations

import pytest

from prefopt import rundir
from prefopt.errors import UserError
from prefopt.recipe import load_recipe
from tests.conftest import run_cli

RECIPE = "recipes/tiny/dpo.yaml"


def test_the_command_is_recorded_and_read_back(tmp_path):
    rundir.write_recipe(tmp_path, "ipo", "name: x\n")
    assert (tmp_path / rundir.RECIPE).read_text() == "# prefopt ipo\nname: x\n"
    assert rundir.command_of(tmp_path) == "ipo"
    assert rundir.command_of(tmp_path / "nowhere") is None
    (tmp_path / rundir.RECIPE).write_text("name: x\n")  # written by hand: no command
    assert rundir.command_of(tmp_path) is None


def test_resume_refuses_a_directory_made_by_another_command(tmp_path):
    recipe = load_recipe(RECIPE, [f"train.output_dir={tmp_path / 'run'}"])
    assert rundir.prepare(recipe, "dpo", resume=False) == tmp_path / "run" and (tmp_path / "run").is_dir()
    rundir.write_recipe(tmp_path / "run", "sft", "")
    with pytest.raises(UserError, match=r"^--resume: .*run holds a `prefopt sft` run, not `prefopt dpo`"):
        rundir.prepare(recipe, "dpo", resume=True)
    assert rundir.prepare(recipe, "sft", resume=True) == tmp_path / "run"  # its own command resumes
    assert rundir.prepare(recipe, "dpo", resume=False) == tmp_path / "run"  # a fresh run may reuse the directory


def test_cli_errors_are_one_line_before_any_model_loads(tmp_path):
    taken = tmp_path / "a_file"
    taken.write_text("not a directory\n")
    res = run_cli("dpo", "-r", RECIPE, "--set", f"train.output_dir={taken}")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == f"prefopt dpo: train.output_dir: {taken} exists and is a file, " \
                                                  "not a directory"
    run = tmp_path / "sft_run"
    rundir.write_recipe(run, "sft", "")
    res = run_cli("dpo", "-r", RECIPE, "--set", f"train.output_dir={run}", "--resume")
    assert res.returncode == 2 and "holds a `prefopt sft` run, not `prefopt dpo`" in res.stderr
    # Objective.check: --dry-run shows the error too, and prints no recipe
    res = run_cli("kto", "-r", "recipes/tiny/kto.yaml", "--set", "train.max_tokens_per_batch=200", "--dry-run")
    assert res.returncode == 2 and res.stdout == "" and "train.max_tokens_per_batch: not for `prefopt kto`" in res.stderr
    res = run_cli("ppo", "-r", "recipes/tiny/ppo.yaml", "--set", "train.precompute_ref=true", "--dry-run")
    assert res.returncode == 2 and "train.precompute_ref: ppo cannot precompute" in res.stderr


@pytest.mark.parametrize("command, sets, message", [
    ("rm", ["model.kind=toy_mlp"], "model.kind: toy_mlp has no reward-model head"),
    ("grpo", ["model.kind=toy_mlp"], "model.kind: toy_mlp cannot sample responses; grpo needs a causal LM"),
    ("grpo", ["grpo.reward.kind=rm"], "grpo.reward.path: required for grpo.reward.kind: rm"),
    ("ppo", ["ppo.reward.kind=rm", "ppo.critic_init=reward"], "ppo.reward.path: required for ppo.reward.kind: rm"),
    ("ppo", ["lora.rank=4", "lora.dropout=0.1"], "lora.dropout: 0.1, but ppo needs 0"),
])
def test_every_combination_rule_is_the_objective_s(command, sets, message):
    from prefopt.objectives import objective_for

    recipe = load_recipe(f"recipes/tiny/{command}.yaml", sets)
    with pytest.raises(UserError, match=message):
        objective_for(command, recipe.loss).check(recipe)
    objective_for(command, recipe.loss).check(load_recipe(f"recipes/tiny/{command}.yaml"))  # the recipe itself passes
