"""Checkpoints of a run: the engines' states under `checkpoints/step-N` (atomic, the newest `keep` kept) and the
loop's own state beside them (step, data position, RNG states, the objective's and keep-best's state), so a
resumed run continues exactly where the uninterrupted one would be (tests/test_resume.py).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch

from prefopt import portable
from prefopt.fsutil import write_atomic

TAG = "state"


def save(engine, root: Path, step: int, stepper, best, keep: int, portable_form: bool) -> None:
    """Checkpoint the policy, the step's own engines and the loop's state at `step`."""
    rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
    client = {"step": step, "data": stepper.data_state, "rng": rng, "objective": stepper.state_dict(),
              "best": best.state_dict() if best is not None else {}}
    save_checkpoint(engine, root, step, client, keep, stepper.engines, portable_form)


def resume(engine, root: Path, stepper, best) -> dict | None:
    """Load the newest checkpoint into the engines, the step and keep-best, restore the RNG states; the loop's
    position ({"step", "data"}), or None when there is no checkpoint yet."""
    client = load_latest(engine, root, stepper.engines)
    if client is None:
        return None
    stepper.load_state_dict(client.get("objective", {}))
    if best is not None:
        best.load_state_dict(client.get("best", {}))
    rng = client["rng"]
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return {"step": client["step"], "data": client["data"]}


def save_checkpoint(engine, root: Path, step: int, client_state: dict, keep: int, extra: dict | None = None,
                    portable_form: bool = False) -> Path:
    """Write `root/step-N` through a temporary name and an atomic rename; then point `root/latest` at it.

    Frozen parameters are left out: they never change (a LoRA run's base weights) and load again from model.path.

    The policy engine (and `client_state`) go to `step-N/` itself; each of `extra` (e.g. PPO's critic) to
    `step-N/<name>/`, inside the same atomic rename, so a checkpoint is complete or absent. `portable_form`
    writes prefopt/portable.py's layout-independent form instead of DeepSpeed's own.
    """
    import torch.distributed as dist

    root.mkdir(parents=True, exist_ok=True)
    final, tmp = root / f"step-{step}", root / f".tmp-step-{step}"
    if dist.get_rank() == 0 and tmp.exists():
        shutil.rmtree(tmp)
    dist.barrier()
    for name, each in {"": engine, **(extra or {})}.items():
        client = client_state if each is engine else None
        if portable_form:
            portable.save(each, tmp / name, client)
        else:
            each.save_checkpoint(str(tmp / name), tag=TAG, client_state=client or {}, exclude_frozen_parameters=True)
    dist.barrier()
    if dist.get_rank() == 0:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_atomic(root / "latest", final.name)
        done = sorted((p for p in root.glob("step-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))
        for old in done[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def load_latest(engine, root: Path, extra: dict | None = None) -> dict | None:
    """Load the newest complete checkpoint under `root` (and each of `extra` from its sub-directory); its client
    state, or None when there is none."""
    pointer = root / "latest"
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    client = None
    for name, each in {"": engine, **(extra or {})}.items():
        if portable.is_portable(path / name):  # written by a single rank's ZeRO-3: any stage and world load it
            got = portable.load(each, path / name)
        else:
            _, got = each.load_checkpoint(str(path / name), tag=TAG, load_optimizer_states=True,
                                          load_lr_scheduler_states=True, load_module_strict=_all_trainable(each))
        client = got if each is engine else client
    return client


def _all_trainable(engine) -> bool:
    """Checkpoints leave out frozen weights (a LoRA run's base: they never change and reload from model.path), so
    only a model without frozen weights can demand that every key is in the checkpoint."""
    return all(p.requires_grad for p in engine.module.parameters())
