#!/usr/bin/env bash
# GRPO against its control from a converged base (prefopt/experiments/converged.py): seeds 0-2, writes
# docs/converged.md. Builds `builtin:arith-base/SEED/6000` for each seed first (about 13 minutes each on a free core;
# cached afterwards), then about 15 minutes on 2 CPU cores. --quick runs the same pipeline at toy sizes (CI runs it)
# and writes its page under runs/converged_quick/docs (or --docs DIR), never over the committed one.
# To re-write the page from finished runs: python -m prefopt.experiments.converged_page runs/converged docs --minutes M
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ "${1:-}" = --quick ]; then
  shift
  exec "$PY" -m prefopt.experiments.converged --quick --seeds 0 --runs runs/converged_quick \
    --docs runs/converged_quick/docs "$@"
fi
exec "$PY" -m prefopt.experiments.converged --seeds 0 1 2 --runs runs/converged --docs docs "$@"
