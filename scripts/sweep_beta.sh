#!/usr/bin/env bash
# Sweep β for DPO: plain β, or β⁻ (loss.beta_rejected) with β⁺ (loss.beta_chosen) fixed, as in the paper's Fig. 9.
#
#   scripts/sweep_beta.sh --recipe recipes/tiny/dpo.yaml --values "0.05 0.1 0.2" [--param beta_rejected]
#                         [--beta-chosen 0.1] [--name NAME] [--out DIR] [--slurm [-- SBATCH_OPTIONS...]] [--set k=v ...]
#
# Each value gets runs/<NAME>/<param>=<value>/ (DIR/<param>=<value>/ with --out) and all share the W&B group NAME.
# Reference log-probs are precomputed once into runs/<NAME>/ref_cache (DIR/ref_cache) and reused by every run. Locally the values run one after another;
# with --slurm the first value runs as one job, which fills the reference cache, and the rest run as a job array
# that starts after it (afterok). Then: python scripts/collect_sweep.py runs/<NAME>
set -euo pipefail
cd "$(dirname "$0")/.."
recipe='' values='' param=beta name='' root='' slurm=0 beta_chosen='' sets=() sbatch_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --recipe) recipe=$2; shift 2 ;;
    --values) values=$2; shift 2 ;;
    --param) param=$2; shift 2 ;;
    --beta-chosen) beta_chosen=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --out) root=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --slurm) slurm=1; shift ;;
    --) shift; sbatch_opts=("$@"); break ;;
    *) echo "sweep_beta.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
[ -n "$recipe" ] && [ -n "$values" ] || { echo "sweep_beta.sh: --recipe and --values are required" >&2; exit 2; }
case $param in beta|beta_rejected|beta_chosen) ;; *) echo "sweep_beta.sh: --param must be beta, beta_rejected or beta_chosen" >&2; exit 2 ;; esac
name=${name:-sweep_$(basename "$recipe" .yaml)_$param}
read -r -a vals <<< "$values"
root=${root:-runs/$name}
mkdir -p "$root"
common=(--set "train.precompute_ref=true" --set "train.ref_cache_dir=$root/ref_cache" --set "log.group=$name")
[ -n "$beta_chosen" ] && common+=(--set "loss.beta_chosen=$beta_chosen")

args_for() {  # VALUE -> the prefopt arguments of that run
  printf '%s\n' dpo --recipe "$recipe" "${common[@]}" "${sets[@]}" --set "loss.$param=$1" \
    --set "train.output_dir=$root/$param=$1" --set "log.name=$name-$param=$1"
}

if [ "$slurm" = 0 ]; then
  for v in "${vals[@]}"; do
    mapfile -t a < <(args_for "$v")
    echo "== $param=$v"
    scripts/launch.sh "${a[@]}"
  done
else
  printf '%s\n' "${vals[@]}" > "$root/values.txt"
  mapfile -t a0 < <(args_for "${vals[0]}")
  first=$(sbatch --parsable --job-name="$name" --array=0 "${sbatch_opts[@]}" scripts/slurm/prefopt.sbatch "${a0[@]}")
  echo "submitted $param=${vals[0]} as job $first (fills the reference cache)"
  if [ "${#vals[@]}" -gt 1 ]; then
    rest=$(sbatch --parsable --job-name="$name" --array=1-$((${#vals[@]} - 1)) --dependency=afterok:"$first" \
      "${sbatch_opts[@]}" scripts/slurm/sweep_task.sh "$root" "$recipe" "$param" "${common[@]}" "${sets[@]}")
    echo "submitted the other $((${#vals[@]} - 1)) values as job array $rest (after $first)"
  fi
fi
