#!/usr/bin/env bash
# Sweep β for DPO: plain β, or β⁻ (loss.beta_rejected) with β⁺ (loss.beta_chosen) fixed, as in the paper's Fig. 9.
#
#   scripts/sweep_beta.sh --recipe recipes/tiny/dpo.yaml --values "0.05 0.1 0.2" [--param beta_rejected]
#                         [--beta-chosen 0.1] [--name NAME] [--out DIR] [--slurm [-- SBATCH_OPTIONS...]] [--set k=v ...]
#
# Each value gets runs/<NAME>/<param>=<value>/ (DIR/<param>=<value>/ with --out) and all share the W&B group NAME.
# Reference log-probs are precomputed once into runs/<NAME>/ref_cache (DIR/ref_cache) and reused by every run.
# This is scripts/sweep.sh with one axis, loss.<param>; any other key, or a grid of several, goes through sweep.sh.
# Then: python scripts/collect_sweep.py runs/<NAME>
set -euo pipefail
cd "$(dirname "$0")/.."
values='' param=beta name='' pass=() rest=()
while [ $# -gt 0 ]; do
  case $1 in
    --values) values=$2; shift 2 ;;
    --param) param=$2; shift 2 ;;
    --beta-chosen) pass+=(--set "loss.beta_chosen=$2"); shift 2 ;;
    --name) name=$2; shift 2 ;;
    --recipe|--out|--set) pass+=("$1" "$2"); [ "$1" = --recipe ] && recipe=$2; shift 2 ;;
    --slurm) rest=("$@"); break ;;
    *) echo "sweep_beta.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
[ -n "${recipe:-}" ] && [ -n "$values" ] || { echo "sweep_beta.sh: --recipe and --values are required" >&2; exit 2; }
case $param in beta|beta_rejected|beta_chosen) ;; *) echo "sweep_beta.sh: --param must be beta, beta_rejected or beta_chosen" >&2; exit 2 ;; esac
exec scripts/sweep.sh --command dpo --name "${name:-sweep_$(basename "$recipe" .yaml)_$param}" "${pass[@]}" \
  --param "loss.$param" --values "$values" "${rest[@]}"
