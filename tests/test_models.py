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
