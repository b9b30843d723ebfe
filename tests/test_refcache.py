"""Reference log-prob caches from before a tokenization-rule change are never reused."""

import torch
from transformers import AutoModelForCausalLM

from prefopt import refcache
from prefopt.data.collate import Collator
from prefopt.data.loader import TokenizedData
from prefopt.engine import setup_distributed
from prefopt.recipe import load_recipe
from tests.test_independent import recipe_file


def test_a_cache_from_before_the_tokenization_change_is_rebuilt(tmp_path, tiny_path, tokenizer, monkeypatch):
    setup_distributed()
    recipe = load_recipe(recipe_file(tmp_path, "chat"))
    data = TokenizedData(recipe.data.train, "preference", tokenizer, recipe.data, "train")
    ref = AutoModelForCausalLM.from_pretrained(tiny_path).eval()
    key = refcache.cache_key(recipe, tiny_path, recipe.data.train)
    cache, notes = tmp_path / "cache", []
    fresh = refcache.precompute(recipe, ref, data, key, cache, Collator(tokenizer.pad_token_id), notes.append)
    # a file written before the change: same path, no `tokenization` field, log-probs of the double-EOS ids
    path = cache / f"ref-{key}.pt"
    blob = torch.load(path, weights_only=True)
    torch.save({"key": key, "idx": blob["idx"], "logps": blob["logps"] - 5.4}, path)
    again = refcache.precompute(recipe, ref, data, key, cache, Collator(tokenizer.pad_token_id), notes.append)
    assert "does not match this run; rebuilding" in notes[-2] and "computed 8 pairs" in notes[-1]
    assert again == fresh
    assert torch.load(path, weights_only=True)["tokenization"] == refcache.TOKENIZATION_VERSION
    # and the key itself moves with the rules' version, so an old key is not even looked up
    monkeypatch.setattr(refcache, "TOKENIZATION_VERSION", refcache.TOKENIZATION_VERSION - 1)
    assert refcache.cache_key(recipe, tiny_path, recipe.data.train) != key
