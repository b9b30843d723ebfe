"""Iterative on-policy rounds from the shell: R rounds of generate → judge → train (prefopt/rounds.py).

    python scripts/onpolicy_rounds.py --recipe recipes/demo/onpolicy.yaml --prompts "builtin:arith/prompts/train/1500/{round}" \
        [--rounds 3] [--command dpo] [--reference previous|base] [--out runs/rounds] [--set k=v ...]

`--prompts` names the prompts of round r, with `{round}` replaced by r (here: 1,500 new training problems a round).
Each round writes `<out>/round<r>/{generate,judge,train}`; the per-round table (pairs, accuracy, 3D metrics) goes to
`<out>/rounds.md`, `rounds.json` and `rounds.png`, and is printed at the end.
"""

import argparse
import os
import sys
from pathlib import Path

from prefopt.errors import UserError
from prefopt.rounds import run_rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--prompts", required=True, help="prompt source of round r, with {round} for r")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--command", default="dpo", help="the training command (dpo, ipo, slic, sft, ...)")
    ap.add_argument("--reference", choices=("previous", "base"), default="previous",
                    help="each round's reference: the model it starts from, or the base")
    ap.add_argument("--out", type=Path, default=Path("runs/rounds"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override a recipe key (repeatable)")
    args = ap.parse_args()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        run_rounds(args.recipe, args.prompts, args.rounds, args.out, args.command, args.reference, args.sets)
    except UserError as e:  # bad input: one line, as the CLI prints it
        sys.exit(f"onpolicy_rounds: {e}")
    print((args.out / "rounds.md").read_text(), end="")
    print(f"wrote {args.out / 'rounds.md'}, {args.out / 'rounds.json'}, {args.out / 'rounds.png'}")


if __name__ == "__main__":
    main()
