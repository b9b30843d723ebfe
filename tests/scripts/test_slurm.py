"""prefopt on a real Slurm (CI starts one with ../shared/slurm/start_local_slurm.sh): a 2-rank gloo job, a β sweep
as a job array collected into a table, and a requeued job that resumes to the same final loss.

These tests are never skipped: without a reachable Slurm they fail, saying how to start one.
"""

import os
import re
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT, clean_env, read_rows
from tests.scripts.slurm_helpers import release_requeue_hold, tiny_recipe, wait_done

ENV = clean_env()
ENV.update(PYTHON=sys.executable, CPU_PROCS_PER_NODE="2", PYTHONWARNINGS="ignore")


@pytest.fixture(scope="module", autouse=True)
def slurm():
    res = subprocess.run(["scontrol", "ping"], capture_output=True, text=True) if _has("scontrol") else None
    if res is None or "UP" not in res.stdout:
        pytest.fail("no Slurm controller reachable: start one with ../shared/slurm/start_local_slurm.sh (as root)")


def _has(cmd):
    return subprocess.run(["bash", "-c", f"command -v {cmd}"], capture_output=True).returncode == 0


def sbatch(*args, wait=False):
    """Submit a job; with `wait`, poll until it ends and set returncode from its final state. (`sbatch --wait`
    polls at growing intervals, up to 32 s, which made each of these jobs take ~40 s for ~10 s of work.)"""
    res = subprocess.run(["sbatch", "--parsable", *map(str, args)], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, timeout=60)
    if wait and res.returncode == 0:
        state = wait_done(res.stdout.strip().split(";")[0])
        res.returncode, res.stderr = (0 if state == "COMPLETED" else 1), res.stderr + f"job state: {state}\n"
    return res


def losses(d):
    return [r["loss"] for r in read_rows(d) if "loss" in r]


def test_sbatch_trains_over_two_gloo_ranks(tmp_path):
    r = tiny_recipe(tmp_path)
    res = sbatch("--cpus-per-task=2", f"--output={tmp_path}/job-%j.out", "scripts/slurm/prefopt.sbatch", "dpo",
                 "--recipe", r, "--set", f"train.output_dir={tmp_path / 'run'}", wait=True)
    log = "".join(p.read_text() for p in tmp_path.glob("job-*.out"))
    assert res.returncode == 0, res.stderr + log[-3000:]
    assert "1 node(s) x 2 proc(s)" in log
    assert (tmp_path / "run" / "model" / "config.json").exists()
    assert len(losses(tmp_path / "run")) == 6


@pytest.mark.parametrize("command, key", [("ppo", "objective/scores"), ("grpo", "grpo/reward_mean")])
def test_sbatch_runs_the_rl_commands_like_any_other(tmp_path, command, key):
    res = sbatch("--cpus-per-task=2", f"--output={tmp_path}/{command}-%j.out", "scripts/slurm/prefopt.sbatch", command,
                 "--recipe", f"recipes/tiny/{command}.yaml", "--set", f"train.output_dir={tmp_path / command}",
                 "--set", "train.max_steps=3", "--set", "log.every=1", "--set", "eval.max_batches=1", wait=True)
    log = "".join(p.read_text() for p in tmp_path.glob(f"{command}-*.out"))
    assert res.returncode == 0, res.stderr + log[-3000:]
    assert "1 node(s) x 2 proc(s)" in log
    assert [r["step"] for r in read_rows(tmp_path / command) if key in r] == [1, 2, 3]
    assert (tmp_path / command / "model" / "config.json").exists()


def test_beta_sweep_as_job_array_and_collect(tmp_path):
    r = tiny_recipe(tmp_path, steps=3)
    name = f"pytest_sweep_{os.getpid()}"
    env = {**ENV, "CPU_PROCS_PER_NODE": "1"}
    res = subprocess.run(["bash", "scripts/sweep_beta.sh", "--recipe", str(r), "--values", "0.05 0.1 0.2", "--param",
                          "beta_rejected", "--beta-chosen", "0.1", "--name", name, "--slurm", "--",
                          "--cpus-per-task=1", f"--output={tmp_path}/sweep-%A_%a.out"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    jobs = re.findall(r"as job (?:array )?(\d+)", res.stdout)
    assert len(jobs) == 2, res.stdout
    for job in jobs:
        wait_done(job)
    root = ROOT / "runs" / name
    logs = "".join(p.read_text() for p in sorted(tmp_path.glob("sweep-*.out")))
    try:
        assert sorted(p.name for p in root.iterdir() if (p / "model" / "config.json").exists()) == [
            "beta_rejected=0.05", "beta_rejected=0.1", "beta_rejected=0.2"], logs[-3000:]
        # reference log-probs (train and eval sets) computed once by the first job, reused by the array tasks
        assert logs.count("reference log-probs: computed") == 2 and logs.count("reference log-probs: reusing") == 4
        out = subprocess.run([sys.executable, "scripts/collect_sweep.py", str(root)], cwd=ROOT, capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        rows = [ln for ln in (root / "sweep.csv").read_text().splitlines()[1:] if ln]
        assert len(rows) == 3
        assert sorted(float(ln.split(",")[3]) for ln in rows) == [0.05, 0.1, 0.2]  # beta_rejected column
        assert {ln.split(",")[2] for ln in rows} == {"0.1"}  # beta_chosen fixed
        assert (root / "sweep.png").stat().st_size > 5000 and "| beta_rejected=0.05 |" in (root / "sweep.md").read_text()
    finally:
        subprocess.run(["rm", "-rf", str(root)])


@pytest.mark.slow
def test_requeued_job_resumes_to_the_same_final_loss(tmp_path):
    r = tiny_recipe(tmp_path, steps=30)
    straight = sbatch("--cpus-per-task=2", f"--output={tmp_path}/straight-%j.out", "scripts/slurm/prefopt.sbatch",
                      "dpo", "--recipe", r, "--set", f"train.output_dir={tmp_path / 'straight'}", wait=True)
    assert straight.returncode == 0, straight.stderr
    res = sbatch("--cpus-per-task=2", f"--output={tmp_path}/cut-%j.out", "scripts/slurm/prefopt.sbatch", "dpo",
                 "--recipe", r, "--set", f"train.output_dir={tmp_path / 'cut'}")
    job = res.stdout.strip()
    metrics = tmp_path / "cut" / "metrics.jsonl"
    for _ in range(600):  # requeue once training is under way (step 5 logged)
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 6:
            break
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", job], check=True)
    release_requeue_hold(job)
    wait_done(job)
    log = "".join(p.read_text() for p in tmp_path.glob("cut-*.out"))
    assert "resumed from step" in log and "(restart 1)" in log, log[-3000:]
    assert [x["step"] for x in read_rows(tmp_path / "cut")] == [x["step"] for x in read_rows(tmp_path / "straight")]
    torch.testing.assert_close(losses(tmp_path / "cut")[-1], losses(tmp_path / "straight")[-1], atol=1e-5, rtol=0)
