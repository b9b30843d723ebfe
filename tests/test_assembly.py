"""The layouts a run is set up in (prefopt/assembly.py): packed, padded, shared-prompt and token-budget batches
train the same steps; packing is refused where the attention would let sequences see each other, and a token budget
where it would change the loss."""

import pytest
import torch

from prefopt.loop import train
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from tests.conftest import read_rows, tiny_dpo_recipe


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    return tiny_dpo_recipe(tmp_path_factory.mktemp("recipes"))


def losses(rows):
    return [r["loss"] for r in rows if "loss" in r]


def test_a_token_budget_is_refused_where_it_would_change_the_loss(tmp_path):
    from prefopt.errors import UserError
    from prefopt.loop import Trainer

    recipe = load_recipe("recipes/tiny/kto.yaml", [f"train.output_dir={tmp_path}", "train.max_tokens_per_batch=200"])
    with pytest.raises(UserError, match="train.max_tokens_per_batch: not for `prefopt kto`"):
        Trainer(recipe, OBJECTIVES["kto"], resume=False)


@pytest.mark.parametrize("cmd, budget", [("dpo", 180), ("sft", 90), ("rm", 180)])  # 3 to 4 forwards a step
def test_packed_padded_and_token_budget_batches_train_the_same_10_steps(cmd, budget, tmp_path):
    """Every other test here runs the default layout, packed (auto), so the batch-size, accumulation and 1-vs-2-rank
    invariants above hold with packing; this one pins packed to padded, and 8 pairs a step in one forward to the
    same 8 cut by a token budget into forwards of different sizes, and packed to shared prompts (DPO and RM pairs
    compute each prompt once; SFT has no pairs and packs as usual)."""
    rows = {}
    for name, sets in (("packed", ["train.layout=packed"]), ("padded", ["train.layout=padded"]),
                       ("budget", ["train.layout=packed", f"train.max_tokens_per_batch={budget}"]),
                       ("shared", ["train.layout=shared_prompt"])):
        recipe = load_recipe(f"recipes/tiny/{cmd}.yaml", [f"train.output_dir={tmp_path / name}", "train.max_steps=10",
                                                          "log.every=1", "eval.every=0", *sets])
        rows[name] = read_rows(train(recipe, OBJECTIVES[cmd]))
    assert len(losses(rows["packed"])) == 10
    torch.testing.assert_close(losses(rows["packed"]), losses(rows["padded"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(losses(rows["budget"]), losses(rows["packed"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(losses(rows["shared"]), losses(rows["packed"]), atol=1e-5, rtol=0)
    assert rows["packed"][-1]["perf/padding"] == 0 and rows["padded"][-1]["perf/padding"] > 0.1
    eval_loss = {name: [r["eval/loss"] for r in got if "eval/loss" in r] for name, got in rows.items()}
    torch.testing.assert_close(eval_loss["budget"], eval_loss["packed"], atol=1e-5, rtol=0)  # eval is cut too
    forwards = [r["perf/forwards"] for r in rows["budget"] if "perf/forwards" in r]
    # the budget cut the steps, and differently (if arith.py's data changes, pick a budget that still does)
    assert min(forwards) >= 2 and len(set(forwards)) > 1, forwards


def test_packing_is_refused_when_the_attention_lets_sequences_see_each_other(recipe_file, tmp_path, monkeypatch):
    from prefopt import attention
    from prefopt.errors import UserError
    from prefopt.loop import Trainer

    def leaky(module, query, key, value, attention_mask, **kwargs):  # the whole packed row as one sequence
        kwargs.pop("cu_seq_lens_q", None)
        attention_mask = None if attention_mask is not None and attention_mask.numel() == 0 else attention_mask
        return attention.sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    monkeypatch.setattr(attention, "varlen_attention", leaky)
    recipe = load_recipe(recipe_file, [f"train.output_dir={tmp_path / 'x'}", "train.layout=packed"])
    with pytest.raises(UserError, match="train.layout: packed sequences score differently"):
        Trainer(recipe, OBJECTIVES["dpo"], resume=False)
    shared = load_recipe(recipe_file, [f"train.output_dir={tmp_path / 'y'}", "train.layout=shared_prompt",
                                       "model.attn_implementation=sdpa"])
    with pytest.raises(UserError, match="shared_prompt needs model.attn_implementation: prefopt_varlen"):
        Trainer(shared, OBJECTIVES["dpo"], resume=False)
