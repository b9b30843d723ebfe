#!/usr/bin/env bash
# Reproduce the paper's LLM experiments (§5) on the embedded task for seeds 0-2 and write docs/paper.md with its
# figures and claims table (prefopt/experiments/). About 146 minutes on 2 CPU cores from a fresh checkout (a whole
# run with every row in line, 2026-12-03; the three bases' and weak models' builds, 8 of those minutes, come first
# and are cached afterwards). --quick runs the same pipeline at toy sizes in about 2 minutes (CI runs it) and writes
# its page under runs/paper_quick/docs (or --docs DIR), never over the committed one.
# To re-write the page from finished runs: python -m prefopt.experiments.paper_page runs/paper docs --minutes M
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ "${1:-}" = --quick ]; then
  shift
  exec "$PY" -m prefopt.experiments.paper --quick --seeds 0 --runs runs/paper_quick --docs runs/paper_quick/docs "$@"
fi
exec "$PY" -m prefopt.experiments.paper --seeds 0 1 2 --runs runs/paper --docs docs "$@"
