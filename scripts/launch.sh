#!/usr/bin/env bash
# Run a prefopt command locally on N processes (GPUs, or CPU processes over gloo), with the same arguments as
# scripts/slurm/prefopt.sbatch:
#
#   scripts/launch.sh [-n N] dpo --recipe recipes/tiny/dpo.yaml --set loss.beta=0.05
#
# N defaults to the number of visible GPUs, or 1 without GPUs. N=1 runs a plain process (no torchrun).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
n=
if [ "${1:-}" = -n ]; then n=$2; shift 2; fi
if [ -z "$n" ]; then
  n=$("$PYTHON" -c 'import torch; print(max(1, torch.cuda.device_count()))' 2>/dev/null || echo 1)
fi
if [ "$n" -le 1 ]; then
  exec "$PYTHON" -m prefopt.cli "$@"
fi
port=${MASTER_PORT:-$((20000 + RANDOM % 20000))}
exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$n" --master_port "$port" -m prefopt.cli "$@"
