#!/usr/bin/env bash
# Reproduce the paper's LLM experiments (§5) on the embedded task for seeds 0-2 and write docs/paper.md with its
# figures and claims table (prefopt/experiments/). About 62 minutes on 2 CPU cores once the three bases are cached
# (a whole run, 2026-12-02), plus about 13 for GRPO after the control for 200 updates, 19 for the selected PPO and
# 21 for GRPO + SFT term at 1,024 problems an update and 8 for DPO + SFT on its control's candidates' pairs (all
# added 2026-12-03, not yet timed in a whole run); the bases' builds come first the first time. --quick runs
# the same pipeline at toy sizes in about 2 minutes (CI runs it) and writes its page under runs/paper_quick/docs (or
# --docs DIR), never over the committed one.
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
