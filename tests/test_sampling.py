"""The one sampler against transformers' own `generate`: the same greedy answers from left-padded prompts, draws
distributed as the softmax says, one prefill shared by a prompt's samples, and stops padded."""

import torch

from prefopt import builtin, models, sampling
from prefopt.data.tokenize import encode_prompt, stop_ids
from prefopt.recipe import load_recipe
from prefopt.tasks import arith


def tiny():
    recipe = builtin.resolved(load_recipe("recipes/tiny/dpo.yaml"))  # model.path: builtin:tiny
    tok = models.load_tokenizer(recipe)
    model = models.load_policy(recipe, "lm", 1, 0).eval()
    return model, tok


def test_greedy_answers_equal_transformers_generate_for_left_padded_prompts():
    model, tok = tiny()
    prompts = [encode_prompt(r["prompt"], tok) for r in arith.records("prompts", "valid", 6)]
    prompts[1] = prompts[1][:4]  # lengths differ: left padding
    ours = sampling.sample(model, prompts, pad_id=tok.pad_token_id, stop_ids=stop_ids(tok), max_new_tokens=10,
                           seed=0, temperature=0)
    from prefopt.data.collate import left_padded

    ids, attn = left_padded(prompts, tok.pad_token_id)
    theirs = model.generate(input_ids=ids, attention_mask=attn, max_new_tokens=10, do_sample=False,
                            pad_token_id=tok.pad_token_id, eos_token_id=stop_ids(tok))[:, ids.shape[1]:]
    assert torch.equal(ours, theirs)


def test_draws_follow_the_softmax_within_the_nucleus():
    """Probabilities 0.5, 0.3, 0.15, 0.05: 40,000 draws at T = 1 land within 1 % of each; with top_p 0.7 only the
    first two remain (0.5 + 0.3 covers 0.7), renormalised to 0.625 / 0.375; T = 0 is the argmax."""
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().expand(40_000, 4)
    torch.manual_seed(0)
    freq = torch.bincount(sampling.pick(logits, 1.0, 1.0), minlength=4) / 40_000
    torch.testing.assert_close(freq, probs, atol=0.01, rtol=0)
    freq = torch.bincount(sampling.pick(logits, 1.0, 0.7), minlength=4) / 40_000
    torch.testing.assert_close(freq, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.01, rtol=0)
    assert (sampling.pick(logits[:5], 0.0, 1.0) == 0).all()


def test_a_prompts_samples_share_one_prefill_and_rows_stop_and_pad():
    model, tok = tiny()
    prompts = [encode_prompt(r["prompt"], tok) for r in arith.records("prompts", "valid", 3)]
    calls = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw["input_ids"].shape), with_kwargs=True)
    out = sampling.sample(model, prompts, pad_id=tok.pad_token_id, stop_ids=stop_ids(tok), max_new_tokens=6,
                          seed=1, temperature=1.0, n=4)
    hook.remove()
    assert out.shape[0] == 12 and calls[0][0] == 3 and all(c == (12, 1) for c in calls[1:])  # 3 prompts, once
    again = sampling.sample(model, prompts, pad_id=tok.pad_token_id, stop_ids=stop_ids(tok), max_new_tokens=6,
                            seed=1, temperature=1.0, n=4)
    assert torch.equal(out, again)  # (prompts, seed) alone decide
    stops = torch.isin(out, torch.tensor(stop_ids(tok)))
    for row, stop in zip(out, stops):
        if stop.any():
            first = int(stop.nonzero()[0])
            assert (row[first + 1:] == tok.pad_token_id).all()
