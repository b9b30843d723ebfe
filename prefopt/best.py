"""`train.keep_best`: keep the weights of the evaluation with the best value of a logged metric.

At every evaluation (step 0 included: if training only hurts, the best weights are the starting ones) the
metric is compared with the best so far; a better value exports the policy to `<run>/best/`, atomically, in the
layout of the run's final export. At the end the best weights become the run's `model/` (and `adapter/` under
LoRA) and the last step's go to `last/`. The best step and value travel in checkpoints, so a resumed run keeps
comparing with them. The choice reads only what the run logs: select on a validation set, never on the test set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from prefopt import rundir
from prefopt.errors import UserError

Export = Callable[[Path], None]  # writes `model/` (and `adapter/`) under the directory it is given


class KeepBest:
    """The best evaluation so far of `train.keep_best`, and the exports that keep its weights."""

    def __init__(self, recipe, run_dir: Path):
        self.key, self.mode, self.run_dir = recipe.train.keep_best, recipe.train.keep_best_mode, run_dir
        self.step: int | None = None
        self.value: float | None = None

    def update(self, step: int, metrics: dict[str, float], export: Export) -> bool:
        """Compare an evaluation's metrics with the best so far; export the weights when they are better."""
        if self.key not in metrics:
            if step == 0:  # the first evaluation names every metric there will be
                known = ", ".join(sorted(k for k in metrics if k.startswith(("eval/", "3d/unseen"))))
                raise UserError(f"train.keep_best: `{self.key}` is not among the evaluation's metrics ({known}); "
                                "eval/accuracy needs eval.prompts")
            return False
        value = metrics[self.key]
        if self.value is not None and not (value > self.value if self.mode == "max" else value < self.value):
            return False
        export(self.run_dir / rundir.BEST)
        self.step, self.value = step, value
        return True

    def finish(self, export: Export, rank: int) -> str:
        """The last weights to `last/`, the best ones to the run's own `model/` (and `adapter/`); a summary line."""
        export(self.run_dir / rundir.LAST)
        if rank == 0:
            for name in (rundir.MODEL, rundir.ADAPTER):
                kept = self.run_dir / rundir.BEST / name
                if kept.exists():
                    target = self.run_dir / name
                    if target.exists():
                        shutil.rmtree(target)
                    os.replace(kept, target)
            shutil.rmtree(self.run_dir / rundir.BEST, ignore_errors=True)
        return (f"train.keep_best: model/ holds step {self.step} ({self.key} {self.value:.4g}); "
                f"last/ the final step's weights")

    def state_dict(self) -> dict:
        return {"step": self.step, "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.value = state.get("step"), state.get("value")
