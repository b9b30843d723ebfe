"""prefopt against a plain reimplementation (tests/independent.py): log-probs of plain, EOS-terminated, chat and
truncated rows through the real load path, the precomputed-reference cache, and 10 full-batch DPO steps."""

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from prefopt import refcache
from prefopt.data.collate import Collator
from prefopt.data.loader import TokenizedData
from prefopt.engine import setup_distributed
from prefopt.logprobs import sequence_logps
from prefopt.loop import train
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from prefopt.tasks import arith
from tests import independent
from tests.conftest import read_rows, write_jsonl

N = 8
# Per-sequence log-probs of the untrained tiny model are sums of ~30 tokens at ~6 nats (|log π| ≈ 160), where one
# fp32 ulp is 1.5e-5: they are compared to 1e-5 plus 1e-6 relative. A tokenization slip would cost whole nats.
LOGP_TOL = dict(atol=1e-5, rtol=1e-6)


def rows(style: str) -> list[dict]:
    """Arithmetic pairs as plain text, as text already ending in EOS, or as chat messages."""
    out = []
    for rec in arith.records("pairs", "train", N):
        if style == "eos":
            rec = {**rec, "chosen": rec["chosen"] + "</s>", "rejected": rec["rejected"] + "</s>"}
        elif style == "chat":
            rec = {"prompt": [{"role": "user", "content": rec["prompt"]}],
                   "chosen": [{"role": "assistant", "content": rec["chosen"]}],
                   "rejected": [{"role": "assistant", "content": rec["rejected"]}]}
        out.append(rec)
    return out


def recipe_file(tmp_path, style: str, max_length: int = 96, max_prompt_length: int = 40, extra: str = ""):
    data = write_jsonl(tmp_path / f"{style}.jsonl", rows(style))
    path = tmp_path / f"{style}.yaml"
    path.write_text(f"""model: {{path: "builtin:tiny"}}
data: {{train: {data}, max_length: {max_length}, max_prompt_length: {max_prompt_length}, shuffle: false}}
loss: {{beta: 0.1}}
optim: {{lr: 0.002, schedule: constant, grad_clip: 0.0}}
train: {{max_steps: 10, micro_batch_size: {N}, grad_accum: 1, precision: fp32}}
log: {{every: 1, console: false}}
eval: {{probe_size: 0}}
{extra}""")
    return path


@pytest.mark.parametrize("style, max_length, max_prompt_length", [
    ("plain", 96, 40), ("eos", 96, 40), ("chat", 96, 40), ("plain", 24, 12)])
def test_logps_equal_an_independent_full_forward(tmp_path, tiny_path, tokenizer, style, max_length, max_prompt_length):
    recipe = load_recipe(recipe_file(tmp_path, style, max_length, max_prompt_length))
    data = TokenizedData(recipe.data.train, "preference", tokenizer, recipe.data, "train")
    if max_length == 24:  # the truncated case must really cut prompts and responses
        assert data.stats.truncated["prompt truncated"] and data.stats.truncated["response truncated"]
    model = AutoModelForCausalLM.from_pretrained(tiny_path).eval()
    with torch.no_grad():
        got = sequence_logps(model, Collator(tokenizer.pad_token_id)(list(data)), chunk_tokens=7).logps
        pairs = [tuple(independent.tokenize(tokenizer, rec, side, max_length, max_prompt_length)
                       for side in ("chosen", "rejected")) for rec in rows(style)]
        want = independent.logps(model, pairs)
    # EOS-terminated text gives exactly the ids (so the log-probs) of plain text
    assert pairs[0][0][1].count(tokenizer.eos_token_id) == (0 if max_length == 24 else 1)
    torch.testing.assert_close(got, want, **LOGP_TOL)


@pytest.mark.parametrize("layout", ["padded", "packed", "shared_prompt"])
def test_precomputed_reference_cache_equals_an_independent_forward(tmp_path, tiny_path, tokenizer, layout):
    """The reference pass goes through the run's own collator, in any layout."""
    from prefopt import attention

    setup_distributed()
    recipe = load_recipe(recipe_file(tmp_path, "chat"))
    data = TokenizedData(recipe.data.train, "preference", tokenizer, recipe.data, "train")
    ref = AutoModelForCausalLM.from_pretrained(tiny_path, attn_implementation=attention.register()).eval()
    key = refcache.cache_key(recipe, tiny_path, recipe.data.train)
    collate = Collator(tokenizer.pad_token_id, layout=layout)
    table = refcache.precompute(recipe, ref, data, key, tmp_path / "cache", collate, print)
    reread = refcache.precompute(recipe, ref, data, key, tmp_path / "cache", collate, print)
    pairs = [tuple(independent.tokenize(tokenizer, rec, side, 96, 40) for side in ("chosen", "rejected"))
             for rec in rows("chat")]
    with torch.no_grad():
        want = independent.logps(ref, pairs)
    for cached in (table, reread):
        got = torch.tensor([cached[i] for i in range(N)])  # idx -> [chosen, rejected]
        torch.testing.assert_close(got.T.reshape(-1), want, **LOGP_TOL)


@pytest.mark.parametrize("style", ["plain", "chat"])
def test_ten_dpo_steps_equal_an_independent_implementation(tmp_path, tiny_path, tokenizer, style):
    recipe = load_recipe(recipe_file(tmp_path, style), [f"train.output_dir={tmp_path / 'run'}"])
    got = [r for r in read_rows(train(recipe, OBJECTIVES["dpo"])) if "loss" in r]
    policy = AutoModelForCausalLM.from_pretrained(tiny_path)
    reference = copy.deepcopy(policy).eval()
    pairs = [tuple(independent.tokenize(tokenizer, rec, side, 96, 40) for side in ("chosen", "rejected"))
             for rec in rows(style)]
    want = independent.dpo_steps(policy, reference, pairs, beta=0.1, lr=0.002, steps=10)
    assert len(got) == 10 and want[-1]["loss"] < want[0]["loss"] - 0.05  # it learned
    for key in ("loss", "rewards/margins"):
        torch.testing.assert_close([r[key] for r in got], [r[key] for r in want], atol=1e-5, rtol=0, msg=key)
    for key in ("logps/chosen", "logps/rejected"):
        torch.testing.assert_close([r[key] for r in got], [r[key] for r in want], **LOGP_TOL, msg=key)
