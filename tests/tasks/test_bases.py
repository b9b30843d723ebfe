"""The cached SFT bases: spec parsing, the cache key, and one real (two-step) build through `prefopt sft`."""

import pytest

from prefopt import builtin, cpu_pin
from prefopt.errors import UserError
from prefopt.tasks import bases


def test_spec_defaults_and_errors():
    assert bases.parse("arith-base", []) == (0, bases.SHAPES["arith-base"]["steps"], bases.SFT_PROBLEMS)
    assert bases.parse("arith-weak", ["2", "50"]) == (2, 50, bases.SFT_PROBLEMS)
    assert bases.parse("arith-base", ["1", "3000", "2000"]) == (1, 3000, 2000)
    for rest in (["x"], ["1", "0"], ["1", "2", "0"], ["1", "2", "3", "4"], ["-1"]):
        with pytest.raises(UserError, match=r"SEED\[/STEPS\[/PROBLEMS\]\]"):
            bases.parse("arith-base", rest)


def test_cache_key_changes_with_what_makes_the_model():
    key = bases.cache_key("arith-base", 0, 10)
    assert key == bases.cache_key("arith-base", 0, 10)
    assert len({key, bases.cache_key("arith-base", 1, 10), bases.cache_key("arith-base", 0, 11),
                bases.cache_key("arith-weak", 0, 10), bases.cache_key("arith-base", 0, 10, 2000)}) == 5
    assert bases.cache_key("arith-base", 0, 10, bases.SFT_PROBLEMS) == key  # the default count keeps built bases
    assert "builtin:arith/sft/train/2000/3" in bases.recipe_text("arith-base", 3, 10, 2000, "", "")


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


def test_a_problem_count_is_its_own_base(tmp_path, monkeypatch):
    built = []

    def fake_build(name, seed, steps, problems, home):  # what a build is asked for, without the minutes of SFT
        built.append((name, seed, steps, problems))
        (home / "sft" / "model").mkdir(parents=True)
        (home / "sft" / "model" / "config.json").write_text("{}")

    monkeypatch.setattr(bases, "_build", fake_build)
    scarce = bases.resolve("arith-base", ["1", "30", "64"], tmp_path)
    assert bases.resolve("arith-base", ["1", "30"], tmp_path) != scarce
    assert built == [("arith-base", 1, 30, 64), ("arith-base", 1, 30, bases.SFT_PROBLEMS)]
    assert "/arith-base-s1-n30-p64-" in scarce and not list(tmp_path.glob("arith-base-s1-n30-p2*"))


@pytest.mark.skipif(not cpu_pin.X86, reason="the pin is for x86-64 processors")
def test_a_base_is_the_same_whatever_the_threads_and_the_cpu_path(tmp_path, monkeypatch):
    """The build runs on one thread with pinned CPU arithmetic (prefopt/cpu_pin.py), so `make demo` (all cores), a
    harness's seed process (one thread) and another processor get the same base: here the parent asks for two
    threads and torch's and MKL's portable scalar paths, then for the defaults; without the pin the two differ."""
    from safetensors.torch import load_file

    weights = []
    parents = ({"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
               {"OMP_NUM_THREADS": "1"})
    for index, parent in enumerate(parents):
        monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path / str(index)))
        for variable in ("ATEN_CPU_CAPABILITY", "MKL_CBWR"):
            monkeypatch.delenv(variable, raising=False)
        for variable, value in parent.items():  # what the build's child would inherit
            monkeypatch.setenv(variable, value)
        weights.append(load_file(f"{builtin.resolve('builtin:arith-base/0/8/64')}/model.safetensors"))
    assert all(weights[0][name].equal(weights[1][name]) for name in weights[0])
