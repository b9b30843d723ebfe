#!/usr/bin/env bash
# One device call of a GPU session (/work/.library/device/README.md): issue #11's GPU rows in one go.
#
# Once, on the CPU machine, from the project root:
#   echo /.whl/ >> .git/info/exclude && bash ../shared/gpu/fetch_wheels.sh .whl && cp ../shared/bench/trl_dpo_bench.py .whl/
# Then one `run` per size (10 minutes a call), with carry [".whl"]:
#   bash benchmarks/gpu_session.sh 0.5b
#   bash benchmarks/gpu_session.sh 1.5b
# It installs the wheels the GPU image lacks, checks the packed attention on this GPU first (gpu_check.py: no
# figures if it fails), measures what `train.layout: shared_prompt` saves, what the LM head's chunk size costs at
# the size's shape and what the bf16 optimizer step costs, runs benchmarks/vs_trl.sh with the acceptance rows, then
# a torch.profiler table of prefopt's best row (its top rows: where the GPU time goes) and rollout generation
# (benchmarks/rollout_speed.py: sampling tokens/s against `generate`, a PPO update's generate/score/update split).
# Logs and the table go under $OUT/<size> (or bench-logs/<size>).
# RUNS, STEPS and the other vs_trl.sh / dpo_throughput.py variables pass through.
set -uo pipefail
size=${1:-0.5b}
py=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export TRL_ANCHOR=${TRL_ANCHOR:-$PWD/.whl/trl_dpo_bench.py} WANDB_MODE=offline HF_HUB_OFFLINE=1
export TRL_PYTHON=${TRL_PYTHON:-$py} PREFOPT_PYTHON=${PREFOPT_PYTHON:-$py}
out=${OUT:-bench-logs}/$size
mkdir -p "$out"
"$py" benchmarks/gpu_check.py || exit 1
case $size in  # the size's width, depth and heads, for the in-process shared-prompt measurement
  0.5b) shape="HIDDEN=896 LAYERS=24 HEADS=14" ;;
  1.5b) shape="HIDDEN=1536 LAYERS=28 HEADS=12" ;;
  *) shape="HIDDEN=256 LAYERS=4 HEADS=4" ;;
esac
# shellcheck disable=SC2086  # shape is ENV=VAL words by design
env $shape VOCAB="${VOCAB:-151936}" "$py" benchmarks/shared_prompt.py
# What the LM head's 441-token chunks (prefopt's GPU rule at this vocabulary) cost against the earlier 4,096.
# shellcheck disable=SC2086
env $shape VOCAB="${VOCAB:-151936}" CHUNKS="441 4096" "$py" benchmarks/head_chunks.py
# What the bf16 optimizer step costs, sliced (prefopt/masters.py) against all gradients in fp32 at once.
SIZE=$size "$py" benchmarks/master_step.py
# TRL's default and best; prefopt's default (packed) and shared prompts, with and without checkpointing, and the
# ZeRO-3 recipe on one GPU (runs at stage 0), all with the precomputed reference where TRL's best has it.
: "${RUNS:=trl:GC=1 trl:PRECOMPUTE=1,GC=0 prefopt:STAGE=0,PRECOMPUTE=1 prefopt:STAGE=3,PRECOMPUTE=1 \
prefopt:STAGE=0,PRECOMPUTE=1,LAYOUT=shared_prompt prefopt:STAGE=0,GC=1}"
RUNS=$RUNS SIZE=$size bash benchmarks/vs_trl.sh "$out" | tee "$out/table.txt"
# Where the best row's GPU time goes: the profile's top rows (issue #28: matrix products against copies and syncs).
PROFILE=1 SIZE=$size STAGE=0 PRECOMPUTE=1 STEPS=10 ROWS=${ROWS:-15} timeout 150 "$py" benchmarks/dpo_throughput.py \
  2>&1 | grep -v '^\[' | tail -n $(( ${ROWS:-15} + 8 )) | tee "$out/profile.txt"
# Rollout generation at the size's shape: prefopt's sampler against transformers' generate, and a PPO update's split.
SIZE=$size timeout 180 "$py" benchmarks/rollout_speed.py 2>&1 | grep '^RESULT' | tee "$out/rollout.txt"
