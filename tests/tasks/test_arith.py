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


def test_every_problem_lists_each_problem_of_a_split_once():
    """The three splits partition the problem space (99 × 99 sums, 99 × 99 differences, 99 × 9 products), each
    problem in exactly one of them, once; draws repeat problems, every_problem does not."""
    splits = {split: arith.every_problem(split) for split in arith.SPLITS}
    prompts = [p["prompt"] for rows in splits.values() for p in rows]
    assert len(prompts) == len(set(prompts)) == 2 * 99 * 99 + 99 * 9
    for split, rows in splits.items():
        assert all(arith.split_of(p["prompt"]) == split for p in rows)
    drawn = {r["prompt"] for r in arith.records("prompts", "test", 1000)}
    assert drawn < {p["prompt"] for p in splits["test"]} and len(drawn) < 800  # 1,000 draws, far fewer problems
    for p in splits["test"][:50] + splits["test"][-50:]:
        a, op, b = p["prompt"][3:-5].split()
        assert p["answer"] == str(arith.OPS[op](int(a), int(b))) and p["solution"].endswith(f"Answer: {p['answer']}")


def test_records_of_a_whole_split_follow_every_problem():
    rows = arith.records("sft", "valid", None)
    assert [r["prompt"] for r in rows] == [p["prompt"] for p in arith.every_problem("valid")]
    assert all(r["completion"].endswith(f"Answer: {r['answer']}") for r in rows)
    pairs = arith.records("pairs", "test", None, seed=2)
    assert pairs == arith.records("pairs", "test", None, seed=2) != arith.records("pairs", "test", None, seed=3)
    assert all(p["chosen"] != p["rejected"] for p in pairs)


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
    assert rows("builtin:arith/prompts/test/all") == arith.records("prompts", "test", None)
    assert rows("builtin:arith/pairs/test/all/4") == arith.records("pairs", "test", None, seed=4)
    for bad in ("builtin:arith/sft/train/0", "builtin:arith/sft/train/x", "builtin:arith/sft/train/3/-1",
                "builtin:arith/sft/train/al", "builtin:arith/sft/train/all/x"):
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
