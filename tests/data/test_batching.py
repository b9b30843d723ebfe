"""Token-budget batching: every example once, each forward within the budget, equal forward counts on all ranks."""

import random

from prefopt.data.batching import cut, cut_evenly
from prefopt.data.collate import Collator


def examples(n, seed=0):
    rng = random.Random(seed)
    return [{"idx": i, "prompt_ids": [1] * rng.randint(2, 20), "chosen_ids": [2] * rng.randint(1, 60),
             "rejected_ids": [3] * rng.randint(1, 60)} for i in range(n)]


def test_budget_bins_hold_every_example_once_and_stay_within_the_budget():
    for layout in ("packed", "padded"):
        collate = Collator(0, layout=layout)
        exs = examples(64)
        bins = cut(exs, collate.computed_tokens, micro=8, max_tokens=300)
        assert sorted(ex["idx"] for b in bins for ex in b) == list(range(64))
        for b in bins:
            batch = collate(b)
            assert batch.input_ids.numel() == collate.computed_tokens(b)  # the cost is what the forward computes
            assert batch.input_ids.numel() <= 300 or len(b) == 1
        # first fit: no bin could have taken the first example of a later bin
        assert all(collate.computed_tokens(bins[i] + [bins[j][0]]) > 300
                   for i in range(len(bins)) for j in range(i + 1, len(bins)))


def test_an_example_over_the_budget_travels_alone():
    collate = Collator(0, layout="packed")
    exs = examples(6)
    big = max(exs, key=lambda ex: collate.computed_tokens([ex]))
    bins = cut(exs, collate.computed_tokens, micro=8, max_tokens=collate.computed_tokens([big]) - 1)
    assert [big] in bins


def test_without_a_budget_micro_batches_are_fixed_counts_in_order():
    exs = examples(10)
    assert [[ex["idx"] for ex in b] for b in cut(exs, len, micro=4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_every_rank_gets_as_many_forwards_as_the_busiest():
    collate = Collator(0, layout="packed")
    long = [{**ex, "chosen_ids": [2] * 60, "rejected_ids": [3] * 60} for ex in examples(8)]
    short = [{**ex, "idx": 100 + ex["idx"], "chosen_ids": [2], "rejected_ids": [3]} for ex in examples(8, seed=1)]
    parts = cut_evenly([long, short], collate.computed_tokens, micro=8, max_tokens=200)
    assert len(parts[0]) == len(parts[1]) == 8  # each long pair alone; the short ones split to match
    for part, slice_ in zip(parts, (long, short)):
        assert sorted(ex["idx"] for b in part for ex in b) == sorted(ex["idx"] for ex in slice_)


def test_every_sharding_policy_keeps_its_promise():
    """exact: equal parts, all rows; drop: equal parts, only the remainder lost; pad: equal parts, all rows plus
    fillers at the end; balanced: all rows, sizes within one. Each part is contiguous and in rank order."""
    import pytest

    from prefopt.data.batching import SHARDING, shard

    for n in range(0, 23):
        items = list(range(n))
        for world in (1, 2, 3, 4):
            for policy in SHARDING:
                if policy == "exact" and n % world:
                    with pytest.raises(ValueError, match="do not split evenly"):
                        shard(items, world, policy)
                    continue
                parts = shard(items, world, policy, filler=-1)
                assert len(parts) == world
                flat = [x for part in parts for x in part if x != -1]
                sizes = {len(part) for part in parts}
                if policy == "drop":
                    assert flat == items[:n // world * world] and sizes == {n // world}
                else:
                    assert flat == items  # nothing lost, in order
                if policy in ("exact", "pad"):
                    assert len(sizes) == 1  # the same count on every rank
                if policy == "pad":
                    assert all(x == -1 for part in parts for x in part[len([y for y in part if y != -1]):])
                if policy == "balanced":
                    assert max(sizes) - min(sizes) <= 1
                    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)
