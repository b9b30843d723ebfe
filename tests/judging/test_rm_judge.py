"""The reward-model judge loads what `prefopt rm` saved and scores candidates with it."""

import json

from prefopt.judging import judge
from prefopt.recipe import load_recipe
from tests.conftest import ROOT, run_cli, write_jsonl


def test_rm_run_output_scores_generations(tmp_path):
    res = run_cli("rm", "--recipe", "recipes/tiny/rm.yaml", "--set", f"train.output_dir={tmp_path / 'rm'}",
                  "--set", "train.max_steps=2", "--set", "log.every=1", "--set", "log.console=false")
    assert res.returncode == 0, res.stderr[-2000:]
    gens = write_jsonl(tmp_path / "gen.jsonl", [
        {"id": "0", "prompt": "Q: 1 + 1 = ?\n", "answer": "2", "candidates": ["Answer: 2", "Answer: 3", "no idea"]},
        {"id": "1", "prompt": "Q: 2 * 3 = ?\n", "answer": "6", "candidates": ["Answer: 6", "Answer: 6"]},
    ])
    p = tmp_path / "judge.yaml"
    p.write_text(f"judge: {{kind: rm, rm_path: {tmp_path / 'rm' / 'model'}, input: {gens}}}\n"
                 f"train: {{output_dir: {tmp_path / 'j'}}}\nlog: {{console: false}}\n")
    counts = judge(load_recipe(p), tmp_path / "j")
    pairs = [json.loads(line) for line in (tmp_path / "j" / "pairs.jsonl").read_text().splitlines()]
    assert counts["candidates judged"] == 5
    assert counts.get("kept", 0) == len(pairs) >= 1  # prompt 0's three candidates get distinct rewards
    assert all(isinstance(p["scores"]["chosen"], float) and p["scores"]["chosen"] > p["scores"]["rejected"] for p in pairs)
    assert (ROOT / "prefopt" / "judging" / "rubric.txt").exists()
