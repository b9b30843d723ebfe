#!/usr/bin/env bash
# What `make demo` runs: the on-policy loop on the embedded arithmetic task, end to end on CPU (scripts/demo.py says
# what each step is). DEMO_QUICK=1 runs the same steps at toy sizes (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf runs/demo
exec "${PYTHON:-.venv/bin/python}" scripts/demo.py
