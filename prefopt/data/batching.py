"""Cutting a rank's examples into forwards: a fixed count per micro-batch, or a token budget.

With `train.max_tokens_per_batch: N` an optimizer step still takes `micro_batch_size × grad_accum` examples per
rank (the loss averages over them, the schedule counts them), but they are cut into as many forwards as it takes
to keep each at or under N computed tokens: long pairs travel in small groups, short pairs in large ones, so every
forward fills the device about equally. Because the loss of a step is a sum over examples divided by their number
(prefopt/steps.py), how they are cut changes no gradient.

Under ZeRO several ranks must run the same number of forwards and backwards (the parameter gathers and gradient
reductions inside them are collective), so `cut_evenly` cuts every rank's slice (each rank sees the whole global
batch) and splits the busiest cuts until all ranks have as many forwards as the one that needs most.
"""

from __future__ import annotations

from typing import Callable

Cost = Callable[[list], int]  # computed tokens of one forward over these examples (Collator.computed_tokens)

# How `shard` splits a list over ranks, and who relies on which:
SHARDING = {
    # training batches (data/loader.py) and PPO minibatches: the count divides evenly, anything else is a bug
    "exact": "contiguous equal parts; the length must be a multiple of the ranks",
    # the eval set (loop): every rank the same number of examples, so the same forwards (ZeRO-3's gathers are
    # collective); the last len % world examples are not evaluated
    "drop": "contiguous equal parts of len // world; the remainder is left out",
    # reference precompute (refcache.py): no row may be lost, and every rank must run as many forwards; the
    # fillers are computed and thrown away
    "pad": "contiguous parts of ceil(len / world), the short ones padded with `filler`",
    # GRPO minibatches (grpo.py) and held-out prompts (heldout.py): nothing lost, nothing added; the callers make
    # the forward counts equal themselves (a weight-0 filler, an equal number of sampling calls)
    "balanced": "contiguous parts whose sizes differ by at most one, the earlier ones longer",
}


def shard(items: list, world: int, policy: str, filler=None) -> list[list]:
    """`items` split over `world` ranks under a named policy (SHARDING); part r belongs to rank r.

    >>> shard([1, 2, 3, 4, 5], 2, "drop"), shard([1, 2, 3, 4, 5], 2, "pad", filler=0)
    ([[1, 2], [3, 4]], [[1, 2, 3], [4, 5, 0]])
    >>> shard([1, 2, 3, 4, 5], 2, "balanced"), shard([1, 2, 3, 4], 2, "exact")
    ([[1, 2, 3], [4, 5]], [[1, 2], [3, 4]])
    """
    if policy not in SHARDING:
        raise ValueError(f"shard: unknown policy {policy!r} (available: {', '.join(SHARDING)})")
    if policy == "exact" and len(items) % world:
        raise ValueError(f"shard: {len(items)} items do not split evenly over {world} ranks")
    if policy == "balanced":
        size, extra = divmod(len(items), world)
        bounds = [0]
        for r in range(world):
            bounds.append(bounds[-1] + size + (r < extra))
        return [items[bounds[r]:bounds[r + 1]] for r in range(world)]
    per = -(-len(items) // world) if policy == "pad" else len(items) // world
    parts = [items[r * per:(r + 1) * per] for r in range(world)]
    return [part + [filler] * (per - len(part)) for part in parts] if policy == "pad" else parts


def cut(examples: list, cost: Cost, micro: int, max_tokens: int = 0) -> list[list]:
    """Micro-batches of `micro` examples in order; or, with a budget, first-fit-decreasing bins of at most
    `max_tokens` computed tokens each (an example over the budget forms a bin of its own).

    >>> size = lambda xs: sum(xs)  # a stand-in cost: each "example" is its token count
    >>> cut([5, 1, 4, 2, 3], size, micro=2)
    [[5, 1], [4, 2], [3]]
    >>> cut([5, 1, 4, 2, 3], size, micro=2, max_tokens=6)
    [[5, 1], [4, 2], [3]]
    >>> cut([9, 1, 1, 7], size, micro=2, max_tokens=8)
    [[9], [7, 1], [1]]
    """
    if not max_tokens:
        return [examples[i:i + micro] for i in range(0, len(examples), micro)]
    order = sorted(range(len(examples)), key=lambda i: (-cost([examples[i]]), i))  # longest first, then in order
    bins: list[list] = []
    for i in order:
        for b in bins:
            if cost(b + [examples[i]]) <= max_tokens:
                b.append(examples[i])
                break
        else:
            bins.append([examples[i]])
    return bins


def cut_evenly(slices: list[list], cost: Cost, micro: int, max_tokens: int = 0) -> list[list[list]]:
    """`cut` of every rank's slice, with the busiest bins halved until each rank has the same number of forwards.

    >>> size = lambda xs: sum(xs)
    >>> cut_evenly([[6, 6, 6], [1, 1, 1]], size, micro=3, max_tokens=6)
    [[[6], [6], [6]], [[1], [1], [1]]]
    """
    parts = [cut(s, cost, micro, max_tokens) for s in slices]
    most = max(len(p) for p in parts)
    for p in parts:
        while len(p) < most:
            splittable = [b for b in p if len(b) > 1]
            if not splittable:  # a rank with fewer examples than forwards: cannot happen with equal slices
                raise ValueError("cut_evenly: a slice has fewer examples than the busiest slice has forwards")
            big = max(splittable, key=cost)
            at = p.index(big)
            p[at:at + 1] = [big[:len(big) // 2], big[len(big) // 2:]]
    return parts
