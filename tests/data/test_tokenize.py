"""Tokenization: left-truncated prompts, right-truncated responses, counted; chat templates."""

from prefopt.data.sources import BadRows
from prefopt.data.tokenize import Truncation, encode_example, iter_examples
from prefopt.schema import FieldsConfig


def encode(tokenizer, ex, max_length=64, max_prompt_length=16, trunc=None, bad=None):
    return encode_example(ex, tokenizer, max_length, max_prompt_length, trunc or Truncation(), "f:1",
                          bad or BadRows("skip"))


def test_prompt_keeps_its_end_and_response_its_start(tokenizer):
    prompt = " ".join(str(i) for i in range(40))
    full = [tokenizer.bos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    chosen = tokenizer("1 + 1 = 2. " * 20, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    trunc = Truncation()
    out = encode(tokenizer, {"prompt": prompt, "chosen": "1 + 1 = 2. " * 20, "rejected": "no"}, 40, 16, trunc)
    assert out["prompt_ids"] == full[-16:]
    assert out["chosen_ids"] == chosen[:24]  # budget = 40 - 16
    assert out["rejected_ids"][-1] == tokenizer.eos_token_id
    assert trunc.counts == {"prompt truncated": 1, "response truncated": 1}
    assert trunc.summary() == "1 prompt truncated, 1 response truncated"


def test_truncation_counts_rows_not_tokens(tokenizer):
    trunc, bad = Truncation(), BadRows("skip")
    recs = [(f"f:{i}", {"prompt": "Q " * (30 if i % 2 else 2), "chosen": "a", "rejected": "b"}) for i in range(6)]
    out = list(iter_examples(iter(recs), "preference", tokenizer, FieldsConfig(), 64, 16, bad, trunc))
    assert len(out) == 6 and trunc.counts == {"prompt truncated": 3}
    assert [ex["idx"] for ex in out] == list(range(6))


def test_rows_too_long_for_any_response_are_bad(tokenizer):
    bad = BadRows("skip")
    assert encode(tokenizer, {"prompt": "Q " * 40, "chosen": "a", "rejected": "b"}, 16, 16, bad=bad) is None
    assert bad.counts == {"too long": 1}


def test_chat_messages_render_through_the_template(tokenizer):
    ex = {"prompt": [{"role": "user", "content": "2+2?"}],
          "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]}
    out = encode(tokenizer, ex)
    prompt_text = tokenizer.decode(out["prompt_ids"])
    assert prompt_text == "<s><|user|>2+2?</s><|assistant|>"
    assert tokenizer.decode(out["chosen_ids"]) == "4</s></s>"  # template's end-of-turn, then EOS
