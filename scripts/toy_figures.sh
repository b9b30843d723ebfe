#!/usr/bin/env bash
# Run every toy recipe (4 scenarios + flex-β, DPO+SFT, IPO, SLiC) for seeds 0-2 through prefopt's own loop, then
# write docs/toy/*.png and docs/toy.md (key numbers and the paper's claims, checked). About a minute on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m prefopt.experiments.toy_report --seeds 0 1 2 --runs runs/toy --docs docs "$@"
