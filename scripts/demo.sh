#!/usr/bin/env bash
# The on-policy loop on the embedded arithmetic task, end to end on CPU (what `make demo` runs):
#   SFT base -> evaluate -> generate 8 candidates per prompt -> rule judge -> best/worst pairs -> dpo, dpo+sft ->
#   evaluate, and the reward-based path on the same pairs: rm -> ppo -> evaluate.
# The SFT base is builtin:arith-base: `prefopt sft` builds it on first use (about 2.5 minutes on 2 cores) and caches
# it under $PREFOPT_CACHE, so a second demo (and scripts/paper.sh, which aligns the same base) starts at once.
# Set DEMO_QUICK=1 for the shortened version used in CI (a 40-step base, a few steps per run).
set -euo pipefail
cd "$(dirname "$0")/.."
PF=("${PYTHON:-.venv/bin/python}" -m prefopt.cli)
base=(--set model.path=builtin:arith-base)
gen_quick=()
if [ "${DEMO_QUICK:-0}" = 1 ]; then
  base=(--set model.path=builtin:arith-base/0/40)
  gen_quick=(--set generate.max_prompts=32)
fi
rm -rf runs/demo
"${PF[@]}" generate --recipe recipes/demo/eval_generate.yaml "${base[@]}"
"${PF[@]}" judge --recipe recipes/demo/eval_judge.yaml
"${PF[@]}" generate --recipe recipes/demo/generate.yaml "${base[@]}" "${gen_quick[@]}"
"${PF[@]}" judge --recipe recipes/demo/judge.yaml
# Vanilla DPO, and the paper's remedy (DPO + SFT, Eq. 7) on the same pairs, each evaluated on held-out problems.
for run in dpo dpo_sft; do
  extra=(--set "train.output_dir=runs/demo/$run")
  [ $run = dpo_sft ] && extra+=(--set loss.sft_weight=1.0)
  [ "${DEMO_QUICK:-0}" = 1 ] && extra+=(--set train.max_steps=4 --set log.every=2)
  "${PF[@]}" dpo --recipe recipes/demo/dpo.yaml "${base[@]}" "${extra[@]}"
  "${PF[@]}" generate --recipe recipes/demo/eval_generate.yaml --set model.path=runs/demo/$run/model \
    --set train.output_dir=runs/demo/eval_$run
  "${PF[@]}" judge --recipe recipes/demo/eval_judge.yaml --set judge.input=runs/demo/eval_$run/generations.jsonl \
    --set train.output_dir=runs/demo/eval_$run
done
# The reward-based path on the same pairs and held-out problems: a reward model, then PPO against it.
rm_quick=()
ppo_quick=()
if [ "${DEMO_QUICK:-0}" = 1 ]; then
  rm_quick=(--set train.max_steps=4 --set log.every=2)
  ppo_quick=(--set train.max_steps=2 --set log.every=1)
fi
"${PF[@]}" rm --recipe recipes/demo/rm.yaml "${base[@]}" "${rm_quick[@]}"
"${PF[@]}" ppo --recipe recipes/demo/ppo.yaml "${base[@]}" "${ppo_quick[@]}"
"${PF[@]}" generate --recipe recipes/demo/eval_generate.yaml --set model.path=runs/demo/ppo/model \
  --set train.output_dir=runs/demo/eval_ppo
"${PF[@]}" judge --recipe recipes/demo/eval_judge.yaml --set judge.input=runs/demo/eval_ppo/generations.jsonl \
  --set train.output_dir=runs/demo/eval_ppo
"${PYTHON:-.venv/bin/python}" scripts/demo_report.py runs/demo
