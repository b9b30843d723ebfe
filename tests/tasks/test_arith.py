"""The embedded task's data: disjoint splits, reproducible draws, and the builtin: names that serve them."""

import json

import pytest

from prefopt import builtin
from prefopt.errors import UserError
from prefopt.tasks import arith


def test_train_and_test_share_no_problem():
    """Held-out means never trained on: the SFT base sees 20,000 training problems out of about 20k in all."""
    train = {r["prompt"] for r in arith.records("sft", "train", 20000)}
    test = {r["prompt"] for r in arith.records("prompts", "test", 500)}
    assert not train & test
    assert all(arith.split_of(p) == "test" for p in test) and len(test) > 350  # 500 draws from ~2k: some repeat


def test_records_are_reproducible_and_seeded():
    assert arith.records("pairs", "train", 5) == arith.records("pairs", "train", 5)
    assert arith.records("sft", "train", 5, seed=1) != arith.records("sft", "train", 5)
    for r in arith.records("sft", "test", 20):
        assert r["completion"].endswith(f"Answer: {r['answer']}")


def test_builtin_counts_and_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path))
    rows = lambda spec: [json.loads(line) for line in open(builtin.resolve(spec))]
    assert len(rows("builtin:arith/prompts/test")) == builtin.DATA_SIZES["test"]
    assert rows("builtin:arith/sft/train/7/3") == arith.records("sft", "train", 7, seed=3)
    assert rows("builtin:arith/sft/train/7") == arith.records("sft", "train", 7)
    for bad in ("builtin:arith/sft/train/0", "builtin:arith/sft/train/x", "builtin:arith/sft/train/3/-1"):
        with pytest.raises(UserError, match="KIND/SPLIT"):
            builtin.resolve(bad)


def test_a_changed_generator_never_reads_what_an_older_one_cached(tmp_path, monkeypatch):
    """Files are keyed by the generators' source: an edit to arith.py writes fresh data beside the old files."""
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path))
    expected = arith.records("sft", "train", 7)
    before = builtin.resolve("builtin:arith/sft/train/7")
    edited = tmp_path / "arith.py"
    edited.write_text(open(arith.__file__).read() + "\n# a later version\n")
    monkeypatch.setattr(arith, "__file__", str(edited))
    monkeypatch.setattr(arith, "records", lambda kind, split, count, seed=0: [{"prompt": "new", "completion": "rows"}])
    after = builtin.resolve("builtin:arith/sft/train/7")
    assert after != before and [json.loads(line) for line in open(after)] == [{"prompt": "new", "completion": "rows"}]
    assert [json.loads(line) for line in open(before)] == expected  # the old file is left as it was
