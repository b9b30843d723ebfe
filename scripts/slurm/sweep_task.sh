#!/usr/bin/env bash
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --output=slurm-%x-%A_%a.out
#SBATCH --open-mode=append
# One task of a sweep's job array (submitted by scripts/sweep.sh): runs line SLURM_ARRAY_TASK_ID of ARGS_TSV (the
# prefopt arguments of one grid point, tab-separated) through prefopt.sbatch. Argument: ARGS_TSV
set -euo pipefail
mapfile -t lines < "$1"
IFS=$'\t' read -r -a args <<< "${lines[$SLURM_ARRAY_TASK_ID]}"
exec bash "${SLURM_SUBMIT_DIR:-.}/scripts/slurm/prefopt.sbatch" "${args[@]}"
