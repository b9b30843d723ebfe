#!/usr/bin/env bash
# Sweep any recipe keys over a grid, locally or as a Slurm job array; rank the runs with scripts/collect_sweep.py.
#
#   scripts/sweep.sh --recipe R [--command dpo] --param KEY --values "V1 V2 ..." [--param KEY2 --values "..."]
#                    [--name NAME] [--out DIR] [--set k=v ...] [--no-precompute] [--slurm [-- SBATCH_OPTIONS...]]
#
# Each --param/--values pair is one axis; the grid is their product (lr × β, lr × steps, ...). Each point runs as
# DIR/<key>=<value>[,<key>=<value>...]/ (DIR defaults to runs/<NAME>; <key> is the key's last part, e.g. lr=1e-4,
# unless two swept keys share it), named NAME-<point> in W&B, all in the W&B group NAME. Reference log-probs go to
# one cache, DIR/ref_cache, shared by every point (its entries are keyed by model, data and tokenization, so a
# swept key that changes them gets its own entry); dpo and ipo precompute them (--no-precompute: a live reference).
# Locally the points run one after another; with --slurm the first point runs as one job (it fills the reference
# cache) and the rest as a job array that starts after it (afterok). Then:
#   python scripts/collect_sweep.py DIR --metric eval/accuracy
set -euo pipefail
cd "$(dirname "$0")/.."
recipe='' command=dpo name='' root='' slurm=0 precompute=1 keys=() axes=() sets=() sbatch_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --recipe) recipe=$2; shift 2 ;;
    --command) command=$2; shift 2 ;;
    --param) keys+=("$2"); shift 2 ;;
    --values) axes+=("$2"); shift 2 ;;
    --name) name=$2; shift 2 ;;
    --out) root=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --no-precompute) precompute=0; shift ;;
    --slurm) slurm=1; shift ;;
    --) shift; sbatch_opts=("$@"); break ;;
    *) echo "sweep.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
[ -n "$recipe" ] && [ "${#keys[@]}" -gt 0 ] || { echo "sweep.sh: --recipe and at least one --param are required" >&2; exit 2; }
[ "${#keys[@]}" = "${#axes[@]}" ] || { echo "sweep.sh: give one --values after each --param" >&2; exit 2; }
name=${name:-sweep_$(basename "$recipe" .yaml)}
root=${root:-runs/$name}
mkdir -p "$root"

# Directory labels: the key's last part, or the whole key where two swept keys end alike.
labels=()
for k in "${keys[@]}"; do
  short=${k##*.}
  n=0; for other in "${keys[@]}"; do [ "${other##*.}" = "$short" ] && n=$((n + 1)); done
  if [ "$n" -gt 1 ]; then labels+=("$k"); else labels+=("$short"); fi
done

# The grid, one point per line: "key=value key=value ..." (the first axis varies slowest).
points=("")
for i in "${!keys[@]}"; do
  read -r -a vals <<< "${axes[$i]}"
  [ "${#vals[@]}" -gt 0 ] || { echo "sweep.sh: --values for ${keys[$i]} is empty" >&2; exit 2; }
  next=()
  for p in "${points[@]}"; do for v in "${vals[@]}"; do next+=("${p:+$p }$i=$v"); done; done
  points=("${next[@]}")
done
printf '%s\n' "${points[@]}" > "$root/points.txt"

common=(--set "train.ref_cache_dir=$root/ref_cache" --set "log.group=$name")
case $command in dpo|ipo) [ "$precompute" = 1 ] && common+=(--set "train.precompute_ref=true") ;; esac

label_for() {  # POINT -> its directory name
  local label='' item
  for item in $1; do label+="${label:+,}${labels[${item%%=*}]}=${item#*=}"; done
  echo "$label"
}

args_for() {  # POINT -> the prefopt arguments of that grid point, one per line
  local overrides=() item label
  for item in $1; do overrides+=(--set "${keys[${item%%=*}]}=${item#*=}"); done
  label=$(label_for "$1")
  printf '%s\n' "$command" --recipe "$recipe" "${common[@]}" "${sets[@]}" "${overrides[@]}" \
    --set "train.output_dir=$root/$label" --set "log.name=$name-$label"
}

if [ "$slurm" = 0 ]; then
  for p in "${points[@]}"; do
    mapfile -t a < <(args_for "$p")
    echo "== $(label_for "$p")"
    scripts/launch.sh "${a[@]}"
  done
else
  for p in "${points[@]}"; do args_for "$p" | paste -sd '\t'; done > "$root/args.tsv"
  mapfile -t a0 < <(args_for "${points[0]}")
  first=$(sbatch --parsable --job-name="$name" --array=0 "${sbatch_opts[@]}" scripts/slurm/prefopt.sbatch "${a0[@]}")
  echo "submitted point 0 as job $first (fills the reference cache)"
  if [ "${#points[@]}" -gt 1 ]; then
    rest=$(sbatch --parsable --job-name="$name" --array=1-$((${#points[@]} - 1)) --dependency=afterok:"$first" \
      "${sbatch_opts[@]}" scripts/slurm/sweep_task.sh "$root/args.tsv")
    echo "submitted the other $((${#points[@]} - 1)) points as job array $rest (after $first)"
  fi
fi
