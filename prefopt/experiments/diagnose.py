"""What the embedded task's base gets wrong, and what separates its on-policy pairs (docs/paper.md, "Reading").

    python -m prefopt.experiments.diagnose PAIRS.jsonl GENERATIONS.jsonl --tokenizer MODEL_DIR

PAIRS: `prefopt judge` pairs (best/worst of the policy's candidates). GENERATIONS: greedy answers of the base to
held-out problems (`prefopt generate` with generate.temperature 0). Prints Markdown: how many pairs oppose a right
and a wrong answer, where in the response chosen and rejected first differ (in tokens from the end, and in what),
and whether the base's wrong answers go wrong in the working or only in the final number. `operation_rates` splits
a model's answers by operation (docs/paper.md: the bases differ most in addition).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from prefopt.judging import rule
from prefopt.tasks import arith


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file (`generate`'s candidates, `judge`'s pairs)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _expected(prompt: str) -> dict:
    """The reference solution of an embedded problem `Q: a op b = ?`: its working (before `Answer:`) and answer."""
    a, op, b = prompt[3:].split(" = ?")[0].split()
    working = arith._steps(int(a), int(b), op)
    return {"working": working.strip(), "answer": str(arith.OPS[op](int(a), int(b)))}


def pair_stats(pairs: list[dict], tokenizer) -> dict:
    """Right-vs-wrong counts and where each pair's responses first differ."""
    out = Counter()
    for p in pairs:
        right = (p["score_chosen"] or 5) >= 4, p["score_rejected"] >= 4
        out["right vs wrong" if right == (True, False) else "both right" if all(right) else "both wrong"] += 1
        chosen = tokenizer(p["chosen"], add_special_tokens=False)["input_ids"]
        rejected = tokenizer(p["rejected"], add_special_tokens=False)["input_ids"]
        first = next((i for i, (c, r) in enumerate(zip(chosen, rejected)) if c != r), min(len(chosen), len(rejected)))
        after = "Answer:" in p["rejected"][:len(tokenizer.decode(rejected[:first]))] if first else False
        out["differ first in the final answer" if after else "differ first in the working"] += 1
        out[f"rejected tokens from the first difference to the end: {min(len(rejected) - first + 1, 4)}"
            + ("+" if len(rejected) - first + 1 >= 4 else "")] += 1  # + 1: the end-of-sequence token
    return dict(out)


def error_stats(generations: list[dict]) -> dict:
    """The base's greedy answers: right, wrong with right working, wrong working, or no answer."""
    out = Counter()
    for g in generations:
        text, expected = g["candidates"][0], _expected(g["prompt"])
        score = rule.score(text, expected["answer"])
        if score >= 4:
            out["right"] += 1
        elif score == 1:
            out["no final answer"] += 1
        elif text.split("Answer:")[0].strip() == expected["working"]:
            out["wrong: working right, final number wrong"] += 1
        else:
            out["wrong: working wrong"] += 1
    return dict(out)


def operation_rates(generations: list[dict]) -> dict:
    """Per operation of the embedded task (+, -, *): its problems, the share of all candidates that are right and
    the share of problems with at least one right candidate (the same share for one greedy answer); and of the wrong
    candidates with a final number, the share within 3 of the answer (near misses)."""
    out = {}
    for g in generations:
        answer, operation = _expected(g["prompt"])["answer"], g["prompt"][3:].split()[1]
        right = [rule.score(text, answer) >= 4 for text in g["candidates"]]
        # closeness 1 / (1 + |miss|) is 0 for no number and for a right one: > 0 a numeric miss, >= 1/4 within 3
        misses = [near for near in (rule.closeness(text, answer) for text in g["candidates"]) if near > 0]
        row = out.setdefault(operation, {"problems": 0, "right": 0.0, "any_right": 0, "misses": 0, "near": 0})
        row["problems"] += 1
        row["right"] += sum(right) / len(right)
        row["any_right"] += any(right)
        row["misses"] += len(misses)
        row["near"] += sum(near >= 0.25 for near in misses)
    share = lambda part, whole: round(part / whole, 4) if whole else 0.0
    return {op: {"problems": row["problems"], "right": share(row["right"], row["problems"]),
                 "any_right": share(row["any_right"], row["problems"]),
                 "near_misses": share(row["near"], row["misses"])} for op, row in sorted(out.items())}


def markdown(pairs: dict, errors: dict) -> str:
    n_pairs, n_answers = sum(v for k, v in pairs.items() if k.startswith(("right", "both"))), sum(errors.values())
    lines = ["| on-policy pairs | count | share |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {v / n_pairs:.1%} |" for k, v in sorted(pairs.items())]
    lines += ["", "| the base's greedy answers to held-out problems | count | share |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {v / n_answers:.1%} |" for k, v in sorted(errors.items())]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", type=Path)
    ap.add_argument("generations", type=Path)
    ap.add_argument("--tokenizer", required=True)
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    from prefopt import builtin

    tok = AutoTokenizer.from_pretrained(builtin.resolve(args.tokenizer))
    print(markdown(pair_stats(read_rows(args.pairs), tok), error_stats(read_rows(args.generations))), end="")


if __name__ == "__main__":
    main()
