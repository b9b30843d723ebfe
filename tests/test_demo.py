"""The demo pipeline (base -> on-policy pairs -> DPO, DPO + SFT; GRPO -> held-out evaluation), at toy sizes, end to end."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, clean_env


@pytest.mark.slow
def test_quick_demo_runs_end_to_end():
    env = {**clean_env(), "DEMO_QUICK": "1", "PYTHON": sys.executable}
    res = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    words = " ".join(res.stdout.split())  # the table's title wraps at the table's width, wherever that falls
    assert "held-out test problems, n=40" in words and "3d/chosen_below_ref_frac" in res.stdout
    assert "$ prefopt grpo --recipe recipes/demo/grpo.yaml" in res.stdout  # each step shows its command line
    assert "no SFT term (ablation)" in res.stdout  # the table names vanilla DPO as the shipped recipe's ablation
    runs = ROOT / "runs" / "demo"
    for name in ("eval_base", "eval_dpo", "eval_dpo_sft", "eval_grpo"):
        summary = json.loads((runs / name / "eval.json").read_text())
        assert summary["count"] == 40 and 0 <= summary["score45"] <= 1
    pairs = [json.loads(line) for line in (runs / "judge" / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["scores"]["chosen"] > p["scores"]["rejected"] for p in pairs)
    shipped = yaml.safe_load((ROOT / "recipes" / "demo" / "onpolicy.yaml").read_text())["loss"]["sft_weight"]
    assert shipped > 0
    for name, weight in (("dpo", 0.0), ("dpo_sft", shipped)):  # the same pairs, with and without the SFT term
        assert yaml.safe_load((runs / name / "recipe.yaml").read_text())["loss"]["sft_weight"] == weight
    three_d = [json.loads(line) for line in (runs / "eval_pairs.jsonl").read_text().splitlines()]
    assert three_d == pairs[:128]  # every run's 3D metrics on the same pairs, whatever its batch size
    assert (runs / "grpo" / "model" / "config.json").exists() and (runs / "three_d.png").exists()
