#!/usr/bin/env bash
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --output=slurm-%x-%A_%a.out
#SBATCH --open-mode=append
# One task of a β-sweep job array (submitted by scripts/sweep_beta.sh): picks its value from <root>/values.txt by
# SLURM_ARRAY_TASK_ID and hands over to prefopt.sbatch. Arguments: ROOT RECIPE PARAM [prefopt --set ...]
set -euo pipefail
root=$1 recipe=$2 param=$3
shift 3
mapfile -t vals < "$root/values.txt"
v=${vals[$SLURM_ARRAY_TASK_ID]}
exec bash "${SLURM_SUBMIT_DIR:-.}/scripts/slurm/prefopt.sbatch" dpo --recipe "$recipe" "$@" --set "loss.$param=$v" \
  --set "train.output_dir=$root/$param=$v" --set "log.name=$(basename "$root")-$param=$v"
