"""The on-policy demo pipeline (sft -> generate -> judge -> dpo, dpo+sft -> evaluate), shortened, end to end."""

import json
import subprocess
import sys

from tests.conftest import ROOT, clean_env


def test_quick_demo_runs_end_to_end():
    env = {**clean_env(), "DEMO_QUICK": "1", "PYTHON": sys.executable}
    res = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "accuracy: 4-5 points (n=200)" in res.stdout and "3d/chosen_below_ref_frac" in res.stdout
    runs = ROOT / "runs" / "demo"
    for name in ("eval_sft", "eval_dpo", "eval_dpo_sft"):
        summary = json.loads((runs / name / "eval.json").read_text())
        assert summary["count"] == 200 and 0 <= summary["score45"] <= 1
    pairs = [json.loads(line) for line in (runs / "judge" / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["scores"]["chosen"] > p["scores"]["rejected"] for p in pairs)
    assert (runs / "dpo" / "model" / "config.json").exists() and (runs / "dpo_sft" / "plots" / "3d.png").exists()
