"""LoRA (`lora.rank > 0`): only adapters train, the reference is the base model (adapters off, no copy), 1 and 2
ranks agree, a preempted run resumes exactly, and the saved adapter and merged model reload as the trained policy."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from prefopt import lora, refcache
from prefopt.data.collate import Collator
from prefopt.errors import UserError
from prefopt.logprobs import sequence_logps
from prefopt.loop import Trainer
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from tests.conftest import read_rows, run_cli, tiny_dpo_recipe, two_ranks
from tests.test_loop import losses

LORA = ["lora.rank=4", "lora.alpha=8", "optim.lr=0.02"]  # dropout stays 0: runs with different ranks must agree


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    return tiny_dpo_recipe(tmp_path_factory.mktemp("recipes"))


def _logps(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return sequence_logps(model, batch).logps


def test_lora_trains_only_adapters_its_reference_is_the_base_and_its_exports_reload(recipe_file, tmp_path, tiny_path):
    recipe = load_recipe(recipe_file, [f"train.output_dir={tmp_path / 'run'}", *LORA, "train.max_steps=4"])
    trainer = Trainer(recipe, OBJECTIVES["dpo"], resume=False)
    policy = trainer.context.engine.module
    base = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32).eval()

    # Trainable parameters: r·(in + out) for every linear layer of the body (all-linear leaves out the LM head).
    linears = [m for name, m in base.named_modules() if isinstance(m, torch.nn.Linear) and name != "lm_head"]
    want = sum(4 * (m.in_features + m.out_features) for m in linears)
    trainable = {n: p.numel() for n, p in policy.named_parameters() if p.requires_grad}
    assert sum(trainable.values()) == want and all("lora_" in n for n in trainable)
    assert trainer.context.reference is policy  # no second copy of the weights

    trainer.train()
    pad = trainer.context.tokenizer.pad_token_id
    batch = Collator(pad)(list(trainer.evaluation.eval_data)[:4])  # padded: `base` runs plain SDPA
    trained = _logps(policy.eval(), batch)
    with lora.as_reference(trainer.context.reference) as ref:
        torch.testing.assert_close(_logps(ref, batch), _logps(base, batch), atol=1e-6, rtol=0)
    assert (trained - _logps(base, batch)).abs().max() > 1e-3  # the adapters did learn something

    from peft import PeftModel

    run = tmp_path / "run"
    merged = AutoModelForCausalLM.from_pretrained(run / "model", dtype=torch.float32).eval()
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32),
                                        run / "adapter").eval()
    # 1e-5 plus fp32 rounding: at |log π| ≈ 160 one ulp is 1.5e-5 (W + s·BA and W·x + s·B(A·x) round differently)
    torch.testing.assert_close(_logps(merged, batch), trained, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(_logps(adapter, batch), trained, atol=1e-5, rtol=1e-6)


def test_lora_zero2_zero3_and_two_ranks_match_one_rank(recipe_file, tmp_path):
    def one(name, *sets):
        recipe = load_recipe(recipe_file, [f"train.output_dir={tmp_path / name}", *LORA, *sets])
        Trainer(recipe, OBJECTIVES["dpo"], resume=False).train()
        return read_rows(tmp_path / name)

    z0, z2, z3 = one("z0", "deepspeed.stage=0"), one("z2", "deepspeed.stage=2"), one("z3", "deepspeed.stage=3")
    torch.testing.assert_close(losses(z2), losses(z0), atol=1e-4, rtol=0)
    torch.testing.assert_close(losses(z3), losses(z0), atol=1e-4, rtol=0)
    assert losses(z0)[0] != losses(z0)[-1]
    sets = [*LORA, "deepspeed.stage=3", "train.micro_batch_size=2", f"train.output_dir={tmp_path / 'x2'}"]
    res = run_cli("dpo", "-r", recipe_file, *[x for s in sets for x in ("--set", s)],
                  launcher=two_ranks(29545))
    assert res.returncode == 0, res.stderr[-3000:]
    torch.testing.assert_close(losses(read_rows(tmp_path / "x2")), losses(z0), atol=1e-4, rtol=0)


@pytest.mark.parametrize("stage", [0, 3])
def test_lora_resume_matches_straight_run_and_checkpoints_hold_only_adapters(recipe_file, tmp_path, stage):
    sets = [*LORA, "train.max_steps=8", "train.save_every=4", f"deepspeed.stage={stage}"]
    straight = tmp_path / "straight"
    Trainer(load_recipe(recipe_file, [f"train.output_dir={straight}", *sets]), OBJECTIVES["dpo"], False).train()
    out = tmp_path / "cut"
    args = ["dpo", "-r", recipe_file, "--set", f"train.output_dir={out}"] + [x for s in sets for x in ("--set", s)]
    first = run_cli(*args, env={"PREFOPT_FAULT": "sigterm@4"})
    assert first.returncode == 3, first.stderr[-2000:]
    if stage == 0:  # the frozen base is not written: it reloads from model.path
        saved = torch.load(out / "checkpoints" / "step-4" / "state" / "mp_rank_00_model_states.pt",
                           weights_only=False)["module"]
        frozen = [k for k in saved if "lora_" not in k and not k.endswith("lm_head.weight")]  # DeepSpeed keeps tied
        assert any("lora_" in k for k in saved) and not frozen, frozen[:5]  # weights (the head = the embedding)
    second = run_cli(*args, "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed from step 4" in second.stdout
    torch.testing.assert_close(losses(read_rows(out)), losses(read_rows(straight)), atol=1e-5, rtol=0)


def test_lora_recipe_checks_and_cache_key(recipe_file, tiny_path):
    with pytest.raises(UserError, match="lora"):
        load_recipe(recipe_file, ["lora.rank=-1"])
    with pytest.raises(UserError, match="lora.rank=4: LoRA needs a transformers model"):
        load_recipe(recipe_file, ["lora.rank=4", "model.kind=toy_mlp"])
    keys = {refcache.cache_key(load_recipe(recipe_file, sets), tiny_path, "d.jsonl")
            for sets in ([], ["lora.rank=4"], ["lora.rank=8"], ["lora.rank=8", "lora.target_modules=[q_proj]"])}
    assert len(keys) == 4  # the reference cache key covers the adapter settings


@pytest.mark.parametrize("cmd", ["sft", "rm", "ppo"])
def test_lora_serves_every_command_and_exports_a_plain_model(cmd, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / cmd
    res = run_cli(cmd, "-r", f"recipes/tiny/{cmd}.yaml", "--set", "lora.rank=4", "--set", "train.max_steps=2",
                  "--set", "log.every=1", "--set", "log.console=false", "--set", f"train.output_dir={out}",
                  "--set", "eval.max_batches=1", "--set", "ppo.rollout_batch_size=8")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "parameters train" in res.stdout and (out / "adapter" / "adapter_config.json").is_file()
    cls = AutoModelForSequenceClassification if cmd == "rm" else AutoModelForCausalLM
    cls.from_pretrained(out / "model")  # merged: no peft needed to load it
    rows = read_rows(out)
    assert all(v == v for row in rows for v in row.values())
    if cmd == "ppo":  # the policy left its adapters-off reference: a KL above zero at the last step
        assert rows[-1]["objective/kl"] != 0
