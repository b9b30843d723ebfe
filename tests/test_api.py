"""The Python API runs what the CLI runs: train (any command), generate and judge, from a path or a Recipe."""

import pytest

import prefopt
from prefopt.errors import UserError
from prefopt.recipe import load_recipe
from tests.conftest import read_rows


def test_train_from_a_path_and_from_a_recipe_object(tmp_path):
    quick = ["train.max_steps=2", "log.every=1", "log.console=false", "eval.max_batches=1", "eval.probe_size=2"]
    out = prefopt.train("recipes/tiny/sft.yaml", [f"train.output_dir={tmp_path / 'sft'}", *quick], command="sft")
    assert (out / "model" / "config.json").exists() and (out / "recipe.yaml").read_text().startswith("# prefopt sft")
    recipe = load_recipe("recipes/tiny/dpo.yaml", quick)
    out = prefopt.train(recipe, [f"train.output_dir={tmp_path / 'simpo'}", "loss.variant=simpo", "loss.beta=2.0"])
    assert [r["step"] for r in read_rows(out) if "loss" in r] == [1, 2]
    assert recipe.loss.variant == "dpo"  # the caller's object is not modified
    with pytest.raises(UserError, match="unknown key `loss.betta`"):
        prefopt.train(recipe, ["loss.betta=1"])


def test_generate_then_judge(tmp_path):
    gen = prefopt.generate("recipes/demo/eval_generate.yaml", [
        "model.path=builtin:tiny", f"train.output_dir={tmp_path / 'gen'}", "generate.max_prompts=4",
        "generate.max_new_tokens=4"])
    assert len(gen.read_text().splitlines()) == 4
    summary = prefopt.judge("recipes/demo/eval_judge.yaml", [f"judge.input={gen}", f"train.output_dir={tmp_path / 'j'}"])
    assert summary["count"] == 4 and 0 <= summary["score45"] <= 1


def test_run_by_name_and_accuracy(tmp_path, capsys):
    """`prefopt.run` dispatches on the command's name and prints the CLI line it equals; `prefopt.accuracy` is
    generate then an eval judge, so its summary is the judge's on the same generations."""
    out = prefopt.run("ipo", "recipes/tiny/ipo.yaml", f"train.output_dir={tmp_path / 'ipo'}", "train.max_steps=1",
                      "log.console=false", "eval.probe_size=0")
    assert (out / "recipe.yaml").read_text().startswith("# prefopt ipo")
    assert f"$ prefopt ipo --recipe recipes/tiny/ipo.yaml --set train.output_dir={tmp_path / 'ipo'}" in capsys.readouterr().out
    summary = prefopt.accuracy("builtin:tiny", "builtin:arith/prompts/test/4", tmp_path / "acc",
                               "recipes/demo/eval_generate.yaml", "recipes/demo/eval_judge.yaml", "generate.max_new_tokens=4")
    again = prefopt.judge("recipes/demo/eval_judge.yaml", [f"judge.input={tmp_path / 'acc' / 'generations.jsonl'}",
                                                           f"train.output_dir={tmp_path / 'again'}"])
    assert summary["count"] == 4 and summary == again


def test_evaluations_follow_eval_every_not_log_every(tmp_path):
    """eval.every 2 with log.every 5 over 6 steps: evaluations at steps 0, 2, 4 and 6 (the last step always)."""
    out = prefopt.train("recipes/tiny/dpo.yaml", [f"train.output_dir={tmp_path / 'dpo'}", "train.max_steps=6",
                                                  "log.every=5", "eval.every=2", "log.console=false",
                                                  "eval.max_batches=1", "eval.probe_size=0"])
    rows = read_rows(out)
    assert [r["step"] for r in rows if "eval/loss" in r] == [0, 2, 4, 6]
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 5, 6]
