"""Tokenization: exactly one end marker per response, the prompt/response boundary, truncation, template errors."""

import copy

import pytest

from prefopt.data.sources import BadRows
from prefopt.data.tokenize import NO_END_TOKEN, LoadStats, encode_example, encode_prompt, iter_examples, stop_ids
from prefopt.errors import UserError
from prefopt.schema import DataConfig

USER = [{"role": "user", "content": "2+2?"}]
CHAT = {"prompt": USER, "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}]}


def encode(tokenizer, ex, max_length=64, max_prompt_length=16, stats=None, bad=None):
    return encode_example(ex, tokenizer, max_length, max_prompt_length, stats or LoadStats(), "f:1",
                          bad or BadRows("skip"))


def ids(tokenizer, *tokens):
    return tokenizer.convert_tokens_to_ids(list(tokens))


def with_template(tokenizer, template, extra_special=()):
    tok = copy.deepcopy(tokenizer)
    if extra_special:
        tok.add_special_tokens({"additional_special_tokens": list(extra_special)})
    tok.chat_template = template
    return tok


def test_plain_text_gets_one_eos_whether_or_not_it_ends_with_one(tokenizer):
    # the tiny tokenizer splits " 4" into 'Ġ' and '4'; '</s>' in the text is the EOS token itself
    for chosen in (" 4", " 4</s>", " 4</s>\n"):
        out = encode(tokenizer, {"prompt": "Q: 2+2 =", "chosen": chosen, "rejected": " 5"})
        assert out["chosen_ids"] == ids(tokenizer, "Ġ", "4", "</s>"), chosen
        assert out["rejected_ids"] == ids(tokenizer, "Ġ", "5", "</s>")
    # whitespace before the end (not after an EOS) is the user's text and stays
    out = encode(tokenizer, {"prompt": "Q", "chosen": " 4\n", "rejected": " 5"})
    assert out["chosen_ids"] == ids(tokenizer, "Ġ", "4", "Ċ", "</s>")


def test_chat_response_ends_with_the_templates_end_of_turn_only(tokenizer):
    # the tiny template closes every turn with </s> (its EOS): nothing is appended on top
    out = encode(tokenizer, CHAT)
    assert out["prompt_ids"] == ids(tokenizer, "<s>", "<|user|>", "2", "+", "2", "?", "</s>", "<|assistant|>")
    assert out["chosen_ids"] == ids(tokenizer, "4", "</s>")
    assert out["rejected_ids"] == ids(tokenizer, "5", "</s>")
    assert stop_ids(tokenizer) == [tokenizer.eos_token_id]


def test_chatml_style_end_of_turn_is_kept_and_its_trailing_newline_dropped(tokenizer):
    tok = with_template(tokenizer, "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|im_end|>\\n' }}"
                                   "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}",
                        ["<|im_end|>"])
    stats = LoadStats()
    out = encode(tok, CHAT, stats=stats)
    assert out["chosen_ids"] == ids(tok, "4", "<|im_end|>")  # not '\n', not '</s>'
    assert out["prompt_ids"][-3:] == ids(tok, "<|im_end|>", "Ċ", "<|assistant|>")
    assert stop_ids(tok) == [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]  # generation stops there
    assert not stats.notes


def test_template_without_an_end_token_gets_eos_and_says_so(tokenizer):
    tok = with_template(tokenizer, "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}"
                                   "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    stats = LoadStats()
    out = encode(tok, CHAT, stats=stats)
    assert out["chosen_ids"] == ids(tok, "4", "Ċ", "</s>")
    assert stats.notes == {NO_END_TOKEN} and NO_END_TOKEN in stats.summary()


def test_boundary_is_the_prompt_generate_feeds_then_the_response_alone(tokenizer):
    out = encode(tokenizer, CHAT)
    assert out["prompt_ids"] == encode_prompt(USER, tokenizer)  # what `generate` feeds the model
    full = tokenizer.apply_chat_template(USER + CHAT["chosen"], tokenize=False)
    assert tokenizer.decode(out["prompt_ids"] + out["chosen_ids"]) == "<s>" + full
    plain = encode(tokenizer, {"prompt": "Q: 2+2 =", "chosen": " 4", "rejected": " 5"})
    assert plain["prompt_ids"] == encode_prompt("Q: 2+2 =", tokenizer)
    assert plain["prompt_ids"] + plain["chosen_ids"][:-1] == \
        [tokenizer.bos_token_id] + tokenizer("Q: 2+2 =", add_special_tokens=False)["input_ids"] + ids(tokenizer, "Ġ", "4")


def test_prompt_keeps_its_end_and_response_its_start(tokenizer):
    prompt = " ".join(str(i) for i in range(40))
    full = [tokenizer.bos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    chosen = tokenizer("1 + 1 = 2. " * 20, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    stats = LoadStats()
    out = encode(tokenizer, {"prompt": prompt, "chosen": "1 + 1 = 2. " * 20, "rejected": "no"}, 40, 16, stats)
    assert out["prompt_ids"] == full[-16:]
    assert out["chosen_ids"] == chosen[:24]  # budget = 40 - 16; a cut response has no end marker
    assert out["rejected_ids"][-1] == tokenizer.eos_token_id
    assert stats.truncated == {"prompt truncated": 1, "response truncated": 1}
    assert stats.as_metrics() == {"data/rows": 0.0, "data/truncated/prompt": 1.0, "data/truncated/response": 1.0}


def test_truncation_counts_rows_not_tokens(tokenizer):
    stats, bad = LoadStats(), BadRows("skip")
    recs = [(f"f:{i}", {"prompt": "Q " * (30 if i % 2 else 2), "chosen": "a", "rejected": "b"}) for i in range(6)]
    cfg = DataConfig(max_length=64, max_prompt_length=16)
    out = list(iter_examples(iter(recs), "preference", tokenizer, cfg, bad, stats))
    assert len(out) == 6 and stats.truncated == {"prompt truncated": 3}
    assert [ex["idx"] for ex in out] == list(range(6))
    assert stats.shapes == {"explicit prompt": 6}


def test_rows_too_long_for_any_response_are_bad(tokenizer):
    bad = BadRows("skip")
    assert encode(tokenizer, {"prompt": "Q " * 40, "chosen": "a", "rejected": "b"}, 16, 16, bad=bad) is None
    assert bad.counts == {"too long": 1}


def test_a_template_that_raises_is_a_bad_row_with_its_location(tokenizer):
    tok = with_template(tokenizer, "{% for m in messages %}{% if loop.index0 % 2 == 0 and m['role'] != 'user' %}"
                                   "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
                                   "{{ m['content'] }}</s>{% endfor %}")
    row = {"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
           "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}
    with pytest.raises(UserError, match=r"^d.jsonl:3: unrenderable: chat template raised .*roles must alternate"):
        list(iter_examples(iter([("d.jsonl:3", row)]), "preference", tok, DataConfig(), BadRows("error"), LoadStats()))
    bad = BadRows("skip")
    assert list(iter_examples(iter([("d.jsonl:3", row)]), "preference", tok, DataConfig(), bad, LoadStats())) == []
    assert bad.counts == {"unrenderable": 1}
