"""`prefopt compare`: a PNG and a table whose numbers are each run's final metrics, for DPO and PPO runs alike."""

import json

from prefopt.compare import compare, final_metrics
from tests.conftest import run_cli


def fake_run(path, objective, rows):
    path.mkdir(parents=True)
    (path / "recipe.yaml").write_text(f"# prefopt {objective}\nname: {path.name}\n")
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def runs(tmp_path):
    dpo = fake_run(tmp_path / "dpo", "dpo", [
        {"step": 0, "eval/3d/delta_chosen": 0.0},
        {"step": 5, "loss": 0.61, "3d/delta_chosen": -0.5, "3d/delta_rejected": -2.25, "3d/drop_ratio": 4.5},
        {"step": 10, "loss": 0.52, "3d/delta_chosen": -1.25, "3d/delta_rejected": -4.5, "3d/drop_ratio": 3.6,
         "eval/3d/delta_chosen": -7.0}])
    ppo = fake_run(tmp_path / "ppo", "ppo", [
        {"step": 0, "eval/3d/delta_chosen": 0.0, "eval/3d/delta_rejected": 0.0},
        {"step": 4, "objective/scores": 1.5, "objective/kl": 0.25},
        {"step": 8, "objective/scores": 1.875, "objective/kl": 0.75, "eval/3d/delta_chosen": -0.125,
         "eval/3d/delta_rejected": -0.375, "eval/3d/drop_ratio": 3.0}])
    return dpo, ppo


def test_a_grpo_run_compares_like_the_others(tmp_path):
    dpo, _ = runs(tmp_path)
    grpo = fake_run(tmp_path / "grpo", "grpo", [
        {"step": 0, "eval/3d/delta_chosen": 0.0, "eval/accuracy": 0.25},
        {"step": 10, "grpo/reward_mean": 2.5, "grpo/kl_ref": 0.05, "eval/3d/delta_chosen": -0.25,
         "eval/accuracy": 0.375}])
    rows, _ = compare([dpo, grpo], tmp_path / "g.png")
    assert [r["objective"] for r in rows] == ["dpo", "grpo"]
    assert (rows[1]["grpo/reward_mean"], rows[1]["3d/delta_chosen"], rows[1]["eval/accuracy"]) == (2.5, -0.25, 0.375)
    assert rows[0]["grpo/reward_mean"] is None


def test_final_metrics_are_the_last_training_values_else_eval(tmp_path):
    dpo, ppo = runs(tmp_path)
    got = final_metrics(dpo)
    assert (got["objective"], got["steps"], got["loss"]) == ("dpo", 10, 0.52)
    assert got["3d/delta_chosen"] == -1.25  # the training value wins over a later eval value
    assert got["objective/scores"] is None
    got = final_metrics(ppo)
    assert (got["objective"], got["3d/delta_rejected"], got["objective/scores"], got["loss"]) == ("ppo", -0.375, 1.875, None)


def test_cli_writes_the_png_and_prints_the_final_values(tmp_path):
    dpo, ppo = runs(tmp_path)
    res = run_cli("compare", dpo, ppo, "--out", tmp_path / "cmp.png")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    table = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in res.stdout.splitlines() if line.startswith("│") and ("3d/" in line or "objective/" in line)}
    assert table["3d/delta_chosen"] == ["-1.25", "-0.125"] and table["3d/drop_ratio"] == ["3.6", "3"]
    assert table["objective/scores"] == ["", "1.875"]
    rows, _ = compare([dpo, ppo], tmp_path / "again.png")
    assert [r["3d/delta_rejected"] for r in rows] == [-4.5, -0.375]
    res = run_cli("compare", dpo, tmp_path / "missing")
    missing = tmp_path / "missing"
    assert res.returncode == 2 and res.stderr.strip() == f"prefopt compare: {missing}: not a run directory (no metrics.jsonl)"
