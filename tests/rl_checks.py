"""Checks every RL command (ppo, grpo) must pass, written once: ZeRO-3 in one process and on two ranks against
ZeRO-0, and a SIGKILL then `--resume` against an uninterrupted run."""

from pathlib import Path

import torch

from prefopt.loop import train
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from tests.conftest import read_rows, run_cli, two_ranks

QUICK = ["data.eval=null", "log.every=1", "log.console=false", "eval.probe_size=0"]


def rows(command: str, recipe: str, out: Path, key: str, *sets: str) -> list[dict]:
    """Train in this process; the logged rows of the updates (those with `key`)."""
    loaded = load_recipe(recipe, [f"train.output_dir={out}", *QUICK, *sets])
    return [r for r in read_rows(train(loaded, OBJECTIVES[command])) if key in r]


def zero3_and_two_ranks_match_zero0(command: str, recipe: str, tmp_path: Path, keys: tuple, sets: list, port: int):
    """3 updates at ZeRO-0 (grad_accum 2), ZeRO-3 in one process, and ZeRO-3 on two ranks (grad_accum 1: the same
    global minibatch) log the same numbers (1e-4)."""
    z0 = rows(command, recipe, tmp_path / "z0", keys[0], *sets, "train.grad_accum=2", "deepspeed.stage=0")
    z3 = rows(command, recipe, tmp_path / "z3", keys[0], *sets, "train.grad_accum=2", "deepspeed.stage=3")
    args = [command, "-r", recipe, "--set", f"train.output_dir={tmp_path / 'z3x2'}", "--set", "train.grad_accum=1",
            "--set", "deepspeed.stage=3"] + [x for s in sets + QUICK for x in ("--set", s)]
    res = run_cli(*args, launcher=two_ranks(port))
    assert res.returncode == 0, res.stderr[-3000:]
    two = [r for r in read_rows(tmp_path / "z3x2") if keys[0] in r]
    for key in keys:
        torch.testing.assert_close([r[key] for r in z3], [r[key] for r in z0], atol=1e-4, rtol=0, msg=key)
        torch.testing.assert_close([r[key] for r in two], [r[key] for r in z0], atol=1e-4, rtol=0, msg=key)


def sigkill_then_resume_matches(command: str, recipe: str, tmp_path: Path, keys: tuple, sets: list) -> list[dict]:
    """Killed after update 5 (checkpoints every 2), resumed from step 4: the same rows as a straight run (1e-5).
    Returns the straight run's rows; the caller checks its own state (e.g. PPO's critic and adaptive β)."""
    straight = rows(command, recipe, tmp_path / "straight", keys[0], *sets)
    out = tmp_path / "cut"
    args = [command, "-r", recipe, "--set", f"train.output_dir={out}"] + [x for s in sets + QUICK for x in ("--set", s)]
    first = run_cli(*args, env={"PREFOPT_FAULT": "sigkill@5"})
    assert first.returncode == -9, first.stderr[-2000:]
    assert (out / "checkpoints" / "latest").read_text() == "step-4"
    second = run_cli(*args, "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed from step 4" in second.stdout
    resumed = [r for r in read_rows(out) if keys[0] in r]
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    for key in keys:
        torch.testing.assert_close([r[key] for r in resumed], [r[key] for r in straight], atol=1e-5, rtol=0, msg=key)
    return straight
