"""The cached SFT bases: spec parsing, the cache key, and one real (two-step) build through `prefopt sft`."""

import pytest

from prefopt import builtin
from prefopt.errors import UserError
from prefopt.tasks import bases


def test_spec_defaults_and_errors():
    assert bases.parse("arith-base", []) == (0, bases.SHAPES["arith-base"]["steps"])
    assert bases.parse("arith-weak", ["2", "50"]) == (2, 50)
    for rest in (["x"], ["1", "0"], ["1", "2", "3"], ["-1"]):
        with pytest.raises(UserError, match=r"SEED\[/STEPS\]"):
            bases.parse("arith-base", rest)


def test_cache_key_changes_with_what_makes_the_model():
    key = bases.cache_key("arith-base", 0, 10)
    assert key == bases.cache_key("arith-base", 0, 10)
    assert len({key, bases.cache_key("arith-base", 1, 10), bases.cache_key("arith-base", 0, 11),
                bases.cache_key("arith-weak", 0, 10)}) == 4


def test_build_once_then_reuse(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path))
    from transformers import AutoModelForCausalLM

    path = builtin.resolve("builtin:arith-weak/0/2")
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.hidden_size == bases.SHAPES["arith-weak"]["hidden"]
    home = next(tmp_path.glob("arith-weak-s0-n2-*"))
    assert "max_steps: 2" in (home / "recipe.yaml").read_text() and (home / "sft" / "metrics.jsonl").exists()
    stamp = (home / "sft" / "model" / "config.json").stat().st_mtime_ns
    assert builtin.resolve("builtin:arith-weak/0/2") == path  # a second call finds it: no second build
    assert (home / "sft" / "model" / "config.json").stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob(".build-*"))  # no half-built leftovers
