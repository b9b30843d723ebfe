#!/usr/bin/env bash
# GRPO and on-policy DPO + SFT against their controls from a scarce-SFT base (prefopt/experiments/scarce.py):
# seeds 0-2, writes docs/scarce.md. Builds `builtin:arith-base/SEED` and `builtin:arith-base/SEED/3000/2000` for
# each seed first (cached afterwards); about 181 minutes in all on 2 CPU cores, bases included. --quick runs the
# same pipeline at toy sizes (CI runs it) and writes its page under runs/scarce_quick/docs (or --docs DIR), never
# over the committed one.
# To re-write the page from finished runs: python -m prefopt.experiments.scarce_page runs/scarce docs --minutes M
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ "${1:-}" = --quick ]; then
  shift
  exec "$PY" -m prefopt.experiments.scarce --quick --seeds 0 --runs runs/scarce_quick --docs runs/scarce_quick/docs "$@"
fi
exec "$PY" -m prefopt.experiments.scarce --seeds 0 1 2 --runs runs/scarce --docs docs "$@"
