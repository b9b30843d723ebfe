"""Local launches: scripts/launch.sh on 2 CPU processes matches 1 process; shellcheck passes on every script."""

import shutil
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import ROOT, read_rows, run_cli
from tests.scripts.slurm_helpers import tiny_recipe


def test_launch_two_processes_matches_one(tmp_path):
    r = tiny_recipe(tmp_path)
    one = run_cli("dpo", "-r", r, "--set", f"train.output_dir={tmp_path / 'one'}",
                  launcher=["bash", "scripts/launch.sh", "-n", "1"], env={"PYTHON": sys.executable})
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_cli("dpo", "-r", r, "--set", f"train.output_dir={tmp_path / 'two'}", "--set", "train.micro_batch_size=2",
                  launcher=["bash", "scripts/launch.sh", "-n", "2"], env={"PYTHON": sys.executable})
    assert two.returncode == 0, two.stderr[-2000:]
    loss = lambda d: [x["loss"] for x in read_rows(d) if "loss" in x]
    torch.testing.assert_close(loss(tmp_path / "two"), loss(tmp_path / "one"), atol=1e-4, rtol=0)


def test_shellcheck_passes_on_every_script():
    exe = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    scripts = sorted(str(p) for d in ("scripts", "benchmarks") for p in (ROOT / d).rglob("*")
                     if p.suffix in (".sh", ".sbatch"))
    scripts.append(str(ROOT / ".ci" / "run"))
    assert len(scripts) >= 5
    res = subprocess.run([exe, *scripts], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
