"""Seeds side by side: each seed's job in its own process, a world of one on one thread, with its own log.

docs/paper.md's and docs/converged.md's harnesses (paper.py, converged.py) run their seeds through `side_by_side`.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path


def in_seed_process(job, seed: int, root: Path, args: tuple = ()):
    """`job(seed, root, *args)` as one seed's process: a world of one, one thread, output to
    <root>/seed<N>/commands.log; a failure reaches the parent as one line naming the log."""
    import torch

    from prefopt.engine import DIST_VARS

    for key in DIST_VARS:
        os.environ.pop(key, None)
    os.environ["OMP_NUM_THREADS"] = "1"  # also for the sweep's child processes
    torch.set_num_threads(1)  # seeds run side by side on the machine's cores
    (root / f"seed{seed}").mkdir(parents=True, exist_ok=True)
    log = os.open(root / f"seed{seed}" / "commands.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    try:
        return job(seed, root, *args)
    except Exception as exc:  # the parent sees the message; the traceback stays in the log
        import traceback

        traceback.print_exc()
        raise RuntimeError(f"seed {seed} failed: {exc} (see {root / f'seed{seed}' / 'commands.log'})") from None


def side_by_side(job, seeds: list[int], root: Path, args: tuple = ()) -> list:
    """`job(seed, root, *args)` for every seed, each in its own process (in_seed_process); their results."""
    import multiprocessing

    root.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(len(seeds), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(partial(in_seed_process, job, root=root, args=args), seeds))
