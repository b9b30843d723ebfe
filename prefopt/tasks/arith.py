"""The embedded arithmetic task: synthetic problems with short step-by-step solutions and an answer line.

It stands in for MATH so that tests and the demo need no downloads. Train and test splits come from disjoint
seeds, and every record carries its reference `answer` for the rule judge.
"""

from __future__ import annotations

import random
import zlib

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def problem(rng: random.Random, max_digits: int = 2) -> dict:
    """One problem: `prompt`, step-by-step `solution` ending in `Answer: N`, and the integer `answer`."""
    op = rng.choice(list(OPS))
    a, b = rng.randint(1, 10 ** max_digits - 1), rng.randint(1, _largest_b(op, max_digits))
    return _problem(a, op, b)


def every_problem(split: str, max_digits: int = 2) -> list[dict]:
    """Every distinct problem of a split once, in a fixed order: the whole held-out split for evaluation. Draws
    repeat problems (1,000 test draws hold about 650 distinct ones, a third of them the split's ~100 `*` problems,
    since `problem` picks the operation first), so a rate over draws is noisier than its count suggests."""
    every = (_problem(a, op, b) for op in OPS for a in range(1, 10 ** max_digits)
             for b in range(1, _largest_b(op, max_digits) + 1))
    return [p for p in every if split_of(p["prompt"]) == split]


def _largest_b(op: str, max_digits: int) -> int:
    return 10 ** (1 if op == "*" else max_digits) - 1  # one-digit multipliers: the working is two partial products


def _problem(a: int, op: str, b: int) -> dict:
    answer = OPS[op](a, b)
    return {"prompt": f"Q: {a} {op} {b} = ?\n", "solution": f"{_steps(a, b, op)}Answer: {answer}",
            "answer": str(answer)}


def _steps(a: int, b: int, op: str) -> str:
    if op == "*":
        tens, ones = divmod(a, 10)
        return f"{tens * 10} * {b} = {tens * 10 * b}. {ones} * {b} = {ones * b}. "
    if op == "+":
        return f"{a} + {b - b % 10} = {a + b - b % 10}. " if b >= 10 else ""
    return f"{a} - {b - b % 10} = {a - b + b % 10}. " if b >= 10 else ""


def wrong_solution(p: dict, rng: random.Random) -> str:
    """The same solution with a wrong final answer (off by a small non-zero amount)."""
    wrong = int(p["answer"]) + rng.choice([-10, -2, -1, 1, 2, 10])
    return p["solution"].rsplit("Answer: ", 1)[0] + f"Answer: {wrong}"


SPLITS = ("train", "valid", "test")


def split_of(prompt: str) -> str:
    """`test` for a fixed tenth of all problems (by a stable hash of the prompt), `valid` for another tenth,
    `train` for the rest.

    The problem space is small (about 20k problems), so splits drawn from different seeds alone would overlap:
    a held-out problem must be one no training set can contain. Settings are chosen on `valid`; `test` is read
    only to report the chosen settings.
    """
    bucket = zlib.crc32(prompt.encode()) % 10
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def records(kind: str, split: str, n: int | None, seed: int = 0) -> list[dict]:
    """`n` records of a kind (`sft`, `pairs`, `unpaired`, `prompts`) for a split (`train`, `valid` or `test`,
    disjoint): `n` draws, or with `n=None` one record for each problem of the split (`every_problem`)."""
    if split not in SPLITS:
        raise ValueError(f"unknown arith split {split!r} ({', '.join(SPLITS)})")
    rng = random.Random(f"arith-{split}-{seed}")
    problems = every_problem(split) if n is None else _draws(rng, split)
    out = []
    for p in problems:
        if n is not None and len(out) == n:
            break
        if kind == "sft":
            out.append({"prompt": p["prompt"], "completion": p["solution"], "answer": p["answer"]})
        elif kind == "pairs":
            out.append({"prompt": p["prompt"], "chosen": p["solution"], "rejected": wrong_solution(p, rng),
                        "answer": p["answer"]})
        elif kind == "unpaired":  # KTO's binary feedback: a right or a wrong solution, labelled
            good = rng.random() < 0.5
            out.append({"prompt": p["prompt"], "completion": p["solution"] if good else wrong_solution(p, rng),
                        "label": good, "answer": p["answer"]})
        elif kind == "prompts":
            out.append({"prompt": p["prompt"], "answer": p["answer"]})
        else:
            raise ValueError(f"unknown arith record kind {kind!r} (sft, pairs, unpaired, prompts)")
    return out


def _draws(rng: random.Random, split: str):
    """Problems of `split` drawn from `rng`, one at a time (records draws a wrong answer from the same rng
    between them, so the draws stay lazy)."""
    while True:
        p = problem(rng)
        if split_of(p["prompt"]) == split:
            yield p


def corpus(n: int = 2000) -> list[str]:
    """Text to train the tiny tokenizer on: prompts and solutions of the train split (held-out problems shape
    nothing, the tokenizer included)."""
    return [r["prompt"] + r["completion"] for r in records("sft", "train", n)]
