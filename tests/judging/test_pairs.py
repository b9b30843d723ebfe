"""Pairing: best/worst from the policy, reference/other modes, drops counted per reason; eval summary."""

import json

import pytest

from prefopt.judging import eval_summary, judge, make_pairs
from prefopt.schema import Recipe


def rec(i, cands, **kw):
    return {"id": str(i), "prompt": f"Q{i}", "candidates": cands, "answer": "1", **kw}


def test_best_worst_and_counts():
    recs = [rec(0, ["a", "b", "c"]), rec(1, ["d", "e"]), rec(2, ["f", "g", "h"]), rec(3, ["i", "j"])]
    scores = [[2, 5, 4], [3, 3], [None, None, 5], [None, 4]]
    pairs, counts = make_pairs(Recipe(), recs, scores, {})
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("b", "a")]
    assert pairs[0]["scores"] == {"chosen": 5, "rejected": 2, "candidates": [2, 5, 4]}
    assert counts == {"kept": 1, "dropped: all scores equal": 1, "dropped: judge failures": 2,
                      "candidates judged": 7, "candidates failed": 3}


def test_empty_candidates_never_become_responses():
    pairs, counts = make_pairs(Recipe(), [rec(0, ["", "b", "  ", "d"])], [[1, 5, 1, 2]], {})
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("b", "d")]
    assert counts["candidates empty"] == 2


def test_reference_chosen_and_other_rejected():
    r = Recipe()
    r.judge.chosen_from, r.judge.rejected_from = "reference", "other"
    recs = [rec(0, ["a"], reference="sol0"), rec(1, ["b"]), rec(2, ["c"], reference="sol2")]
    pairs, counts = make_pairs(r, recs, [[2], [5], [1]], {"0": (1, "other0")})
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("sol0", "other0")]
    assert counts["dropped: no reference solution"] == 1
    assert counts["dropped: no generation from the other model"] == 1


def test_other_models_empty_candidates_never_become_rejected(tmp_path):
    """The other model's worst is its worst non-empty text: an empty one (rule score 1) is counted, not used."""
    for name, cands in (("policy", ["1 + 0 = 1. Answer: 1"]), ("other", ["", "Answer: 7", " "])):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(rec(0, cands, reference="0 + 1 = 1. Answer: 1")) + "\n")
    r = Recipe()
    r.judge.input, r.judge.other = str(tmp_path / "policy.jsonl"), str(tmp_path / "other.jsonl")
    r.judge.chosen_from, r.judge.rejected_from = "reference", "other"
    counts = judge(r, tmp_path / "run")
    pairs = [json.loads(line) for line in (tmp_path / "run" / "pairs.jsonl").read_text().splitlines()]
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("0 + 1 = 1. Answer: 1", "Answer: 7")]
    assert counts["other candidates empty"] == 2 and counts["kept"] == 1


def test_a_judge_builds_no_policy_model(tmp_path, monkeypatch):
    """A judge reads generations and its own reward model only: the recipe's builtin policy (here a base that no
    cache holds) is never built. It once was, for every rule judge of a recipe naming `builtin:arith-base`: 4.5
    minutes on 2 cores for nothing."""
    monkeypatch.setattr("prefopt.tasks.bases.resolve", lambda *args: pytest.fail("a judge built a base"))
    (tmp_path / "gens.jsonl").write_text(json.dumps(rec(0, ["Answer: 1", "Answer: 2"])) + "\n")
    r = Recipe()
    r.model.path, r.judge.input = "builtin:arith-base/7/1234", str(tmp_path / "gens.jsonl")
    assert judge(r, tmp_path / "run")["kept"] == 1


def test_eval_summary_is_the_papers_metric():
    s = eval_summary([[5], [4], [2], [1], [None]], "rule")
    assert s == {"count": 4.0, "failures": 1.0, "score5": 0.25, "score45": 0.5}
