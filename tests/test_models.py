"""Model and tokenizer loading through the same paths a user's model takes."""

from prefopt.models import load_tokenizer
from prefopt.schema import Recipe


def test_generic_tokenizer_beside_a_qwen2_config_loads_as_saved(tmp_path):
    """transformers 5 would rebuild it as Qwen2Tokenizer from the model config and tokenize to nothing."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{f"w{i}": i for i in range(3, 50)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>").save_pretrained(tmp_path)
    Qwen2Config(vocab_size=50, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1).save_pretrained(tmp_path)
    r = Recipe()
    r.model.path = str(tmp_path)
    loaded = load_tokenizer(r)
    assert loaded("w5 w7 w49", add_special_tokens=False)["input_ids"] == [5, 7, 49]
    assert (loaded.pad_token_id, loaded.eos_token_id) == (0, 1)


def test_builtin_tiny_tokenizes_digits_one_by_one(tiny_path):
    r = Recipe()
    r.model.path = tiny_path
    tok = load_tokenizer(r)
    ids = tok("Q: 123 + 45 = ?", add_special_tokens=False)["input_ids"]
    digits = [t for t in tok.convert_ids_to_tokens(ids) if any(c.isdigit() for c in t)]
    assert digits == ["1", "2", "3", "4", "5"]
    assert tok.decode(ids) == "Q: 123 + 45 = ?"


def _saved_for_backward(model, batch) -> int:
    """How many tensors a forward of sequence_logps saves for backward outside checkpointed regions."""
    import torch

    from prefopt.logprobs import sequence_logps

    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(1) or t, lambda t: t):
        sequence_logps(model, batch)
    return len(saved)


def test_a_policy_trains_with_its_checkpointed_layers_and_without_its_own_dropout(tmp_path):
    """Models load in eval mode, where transformers skips gradient checkpointing and every dropout; until
    2026-11-24 prefopt trained them so, and `model.gradient_checkpointing` and `lora.dropout` did nothing. Now:
    checkpointed layers save few tensors for backward outside the checkpoints (every layer's internals are
    recomputed), the model's own attention dropout (0.5 here) stays off (two passes agree exactly), and LoRA's
    dropout acts (two passes differ)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from prefopt.data.collate import Collator
    from prefopt.logprobs import sequence_logps
    from prefopt.models import load_policy

    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, attention_dropout=0.5,
                                 attn_implementation="eager")).save_pretrained(tmp_path)
    batch = Collator(pad_id=0)([{"idx": 0, "prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 2], "rejected_ids": [10, 2]}])

    def policy(checkpointing: bool, lora_dropout: float = 0.0):
        recipe = Recipe()
        recipe.model.path, recipe.model.gradient_checkpointing = str(tmp_path), checkpointing
        recipe.model.attn_implementation = "eager"  # the plain path where attention dropout would apply
        recipe.deepspeed.stage = 0
        if lora_dropout:
            recipe.lora.rank, recipe.lora.dropout = 4, lora_dropout
        return load_policy(recipe, "lm", 1, 0)

    plain, checkpointed = _saved_for_backward(policy(False), batch), _saved_for_backward(policy(True), batch)
    assert checkpointed < plain / 2, (checkpointed, plain)
    model = policy(True)
    torch.testing.assert_close(sequence_logps(model, batch).logps, sequence_logps(model, batch).logps, rtol=0, atol=0)
    with_lora = policy(False, lora_dropout=0.5)
    with torch.no_grad():  # LoRA starts with B = 0, where dropout before A changes nothing
        for name, param in with_lora.named_parameters():
            if "lora_B" in name:
                param.normal_()
    first, second = sequence_logps(with_lora, batch).logps, sequence_logps(with_lora, batch).logps
    assert not torch.equal(first, second)
