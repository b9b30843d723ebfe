"""`prefopt judge`: score generated candidates, then write preference pairs (mode: pairs) or a summary (mode: eval).

Pairs follow the paper (§5.2, App. C): chosen is the policy's best candidate or the dataset's reference solution,
rejected the policy's worst or another model's worst; a prompt is dropped, and counted, when its pair carries no
preference (all candidates scored the same), when too few candidates could be judged, or when a needed field
is missing. Outputs are written atomically.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prefopt import builtin, rundir
from prefopt.errors import UserError
from prefopt.fsutil import write_atomic
from prefopt.judging import rule
from prefopt.recipe import dump_recipe
from prefopt.schema import Recipe


def load_generations(path: str | None, what: str) -> list[dict]:
    """Records written by `prefopt generate` (each with `candidates`); errors name file:line."""
    if not path or not Path(path).is_file():
        raise UserError(f"{what}: no such generations file {path!r} (write one with `prefopt generate`)")
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: malformed JSON ({e})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("candidates"), list) or "prompt" not in rec:
            raise UserError(f"{path}:{n}: expected {{id, prompt, candidates: [...]}} as written by `prefopt generate`")
        out.append(rec)
    return out


def make_scorer(recipe: Recipe, run_dir: Path):
    """A function [(prompt, response, reference)] -> [score or None] for the recipe's judge kind.

    Prompts come as the records hold them (text or messages): the reward model renders messages with its chat
    template, exactly as `prefopt rm` saw them in training; the LLM judge reads them as plain text.
    """
    j = recipe.judge
    if j.kind == "rule":
        return lambda items: [rule.score(resp, ref) for _, resp, ref in items]
    if j.kind == "llm":
        from prefopt.judging.llm import LLMJudge

        judge = LLMJudge(j, Path(j.cache or run_dir / rundir.JUDGE_CACHE))
        return lambda items: judge.score_all([(_text(prompt), resp, ref) for prompt, resp, ref in items])
    from prefopt.judging.rm import RMJudge

    return RMJudge(recipe).score_all


def _text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


def score_records(records: list[dict], scorer, kind: str, first_only: bool = False) -> list[list]:
    """Scores of every candidate of every record (one flat call, so the llm judge can run them concurrently)."""
    items, spans = [], []
    for rec in records:
        ref = rec.get("answer")
        if kind == "rule" and ref is None:
            raise UserError(f"prompt id {rec.get('id')}: the rule judge needs the reference `answer` field")
        cands = rec["candidates"][:1] if first_only else rec["candidates"]
        spans.append((len(items), len(items) + len(cands)))
        items += [(rec["prompt"], c, "" if ref is None else str(ref)) for c in cands]
    flat = scorer(items) if items else []
    return [flat[a:b] for a, b in spans]


def best_answers(records: list[dict], scores: list[list], min_score: float) -> list[dict]:
    """SFT records {prompt, completion} of each prompt's best-scoring candidate, where it scores at least
    `min_score`: continued SFT on them is the control that tells alignment from more training (rejection
    sampling fine-tuning)."""
    out = []
    for rec, sc in zip(records, scores):
        judged = [(s, c) for s, c in zip(sc, rec["candidates"]) if s is not None and c.strip()]
        if judged and max(s for s, _ in judged) >= min_score:
            score, text = max(judged, key=lambda t: t[0])
            out.append({"id": rec["id"], "prompt": rec["prompt"], "completion": text, "answer": rec.get("answer"),
                        "score": score})
    return out


def make_pairs(recipe: Recipe, records: list[dict], scores: list[list], other: dict[str, tuple]) -> tuple[list, Counter]:
    """Best/worst (or reference/other) pairs with the count of prompts kept and dropped per reason."""
    j, pairs, counts = recipe.judge, [], Counter()
    for rec, sc in zip(records, scores):
        judged = [(s, c) for s, c in zip(sc, rec["candidates"]) if s is not None]
        counts["candidates judged"] += len(judged)
        counts["candidates failed"] += len(sc) - len(judged)
        empty = sum(not c.strip() for _, c in judged)
        if empty:  # an empty generation cannot be a training response (the data loader rejects it)
            counts["candidates empty"] += empty
            judged = [(s, c) for s, c in judged if c.strip()]
        if j.chosen_from == "reference":
            if not isinstance(rec.get("reference"), str):
                counts["dropped: no reference solution"] += 1
                continue
            chosen, c_score = rec["reference"], float("inf")
        elif len(judged) < 2:
            counts["dropped: judge failures"] += 1
            continue
        else:
            c_score, chosen = max(judged, key=lambda t: t[0])
        if j.rejected_from == "other":
            if rec["id"] not in other:
                counts["dropped: no generation from the other model"] += 1
                continue
            r_score, rejected = other[rec["id"]]
        elif not judged:
            counts["dropped: judge failures"] += 1
            continue
        else:
            r_score, rejected = min(judged, key=lambda t: t[0])
        if c_score == r_score:
            counts["dropped: all scores equal"] += 1
            continue
        if c_score < r_score or chosen == rejected:
            counts["dropped: no preference"] += 1
            continue
        counts["kept"] += 1
        c_known = None if c_score == float("inf") else c_score
        pairs.append({"id": rec["id"], "prompt": rec["prompt"], "chosen": chosen, "rejected": rejected,
                      "answer": rec.get("answer"), "judge": j.kind,
                      "score_chosen": c_known, "score_rejected": r_score,  # ODPO's offset reads these
                      "scores": {"chosen": None if c_score == float("inf") else c_score, "rejected": r_score,
                                 "candidates": sc}})
    return pairs, counts


def eval_summary(scores: list[list], kind: str) -> dict[str, float]:
    """The paper's evaluation (Tables 2, 8, 9): share of 5-point and of 4-5-point answers, and the count."""
    first = [s[0] for s in scores if s and s[0] is not None]
    n = len(first)
    out = {"count": float(n), "failures": float(len(scores) - n)}
    if kind == "rm":
        out["mean_reward"] = sum(first) / max(n, 1)
    else:
        out["score5"] = sum(s == 5 for s in first) / max(n, 1)
        out["score45"] = sum(s >= 4 for s in first) / max(n, 1)
    return out


def judge(recipe: Recipe, run_dir: Path) -> dict:
    """Run the judge; returns the counts (pairs mode) or the summary (eval mode)."""
    rundir.prepare(recipe, "judge")
    rundir.write_recipe(run_dir, "judge", dump_recipe(recipe))
    recipe = builtin.resolved(recipe, sections=("judge",))  # its reward model only: a judge runs no policy
    j = recipe.judge
    records = load_generations(j.input, "judge.input")
    scorer = make_scorer(recipe, run_dir)
    console = Console(stderr=True)
    if j.mode == "eval":
        summary = eval_summary(score_records(records, scorer, j.kind, first_only=True), j.kind)
        write_atomic(Path(j.output or run_dir / rundir.EVAL_SUMMARY), json.dumps(summary, indent=2) + "\n")
        _report(console, f"judge eval ({j.kind}) of {j.input}", summary, recipe, run_dir)
        return summary
    other, other_empty = {}, 0
    if j.rejected_from == "other":
        others = load_generations(j.other, "judge.other")
        for rec, sc in zip(others, score_records(others, scorer, j.kind)):
            judged = [(s, c) for s, c in zip(sc, rec["candidates"]) if s is not None]
            other_empty += sum(not c.strip() for _, c in judged)  # an empty text cannot be a training response
            judged = [(s, c) for s, c in judged if c.strip()]
            if judged:
                other[rec["id"]] = min(judged, key=lambda t: t[0])
    scores = score_records(records, scorer, j.kind)
    pairs, counts = make_pairs(recipe, records, scores, other)
    if other_empty:
        counts["other candidates empty"] += other_empty
    out = Path(j.output or run_dir / rundir.PAIRS)
    write_atomic(out, "".join(json.dumps(p) + "\n" for p in pairs))
    best = best_answers(records, scores, j.best_min_score)
    counts["best answers"] = len(best)
    write_atomic(out.with_name(rundir.BEST_ANSWERS), "".join(json.dumps(b) + "\n" for b in best))
    counts_d = {k: float(v) for k, v in sorted(counts.items())}
    _report(console, f"judge ({j.kind}): {len(records)} prompts -> {out}", counts_d, recipe, run_dir)
    return counts_d


def _report(console: Console, title: str, values: dict, recipe: Recipe, run_dir: Path) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in values.items():
        table.add_row(k, f"{v:.3f}" if isinstance(v, float) and not v.is_integer() else f"{int(v)}")
    console.print(table)
    from prefopt.sinks import Sinks

    recipe.log.console = False  # the table above is the console view; no progress bar for a single record
    sinks = Sinks(run_dir, recipe, total_steps=0, rank=0)
    sinks.log(0, {f"judge/{k}": v for k, v in values.items()})
    sinks.finish({})
