"""Seeds side by side: each seed's job in its own process, a world of one on one thread, with its own log.

docs/paper.md's, docs/converged.md's and docs/scarce.md's harnesses run their seeds through `side_by_side`; the
last two share their command line (`command_line`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
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

    from prefopt import cpu_pin

    root.mkdir(parents=True, exist_ok=True)
    cpu_pin.pin()  # the seeds' processes start with it (spawned): a page's numbers are the same on another CPU
    with ProcessPoolExecutor(len(seeds), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(partial(in_seed_process, job, root=root, args=args), seeds))


def command_line(description: str, run_seed, sizes, quick_sizes, runs: str, write_page, argv=None) -> None:
    """`--seeds`, `--runs`, `--docs`, `--quick`: run_seed(seed, root, sizes, quick) per seed, then write_page."""
    from prefopt.experiments import REPO
    from prefopt.fsutil import write_atomic

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=Path(runs))
    ap.add_argument("--docs", type=Path, default=REPO / "docs")
    ap.add_argument("--quick", action="store_true", help="toy sizes: checks the pipeline and the page, not the result")
    args = ap.parse_args(argv)
    sizes, t0 = quick_sizes if args.quick else sizes, time.time()
    args.runs.mkdir(parents=True, exist_ok=True)
    write_atomic(args.runs / "sizes.json", json.dumps(asdict(sizes)))  # for re-writing the page from the runs
    summaries = side_by_side(run_seed, args.seeds, args.runs, (sizes, args.quick))
    page = write_page(summaries, asdict(sizes), args.docs, (time.time() - t0) / 60, args.quick)
    print(f"wrote {page} ({(time.time() - t0) / 60:.1f} min)")
