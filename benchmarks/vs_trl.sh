#!/usr/bin/env bash
# prefopt beside TRL on the anchor DPO workload, in one session on one GPU (machines differ by ±20 %, so only
# figures from the same run compare). Each RUNS entry is "system:ENV=VAL,ENV=VAL"; every run prints one RESULT
# line, and the table at the end gives tokens/s, peak memory and the ratio to the first TRL run.
#
#   bash benchmarks/vs_trl.sh [log_dir]
#   RUNS="trl:GC=1 prefopt:STAGE=3" SIZE=1.5b bash benchmarks/vs_trl.sh
# On CPU (TRL in its own virtualenv), the small shape, packed and padded layouts:
#   TRL_PYTHON=/tmp/trlvenv/bin/python PREFOPT_PYTHON=.venv/bin/python SIZE=small VOCAB=32000 STEPS=12 \
#   RUNS="trl:PRECOMPUTE=1,GC=0 prefopt:STAGE=0,PRECOMPUTE=1,LAYOUT=padded prefopt:STAGE=0,PRECOMPUTE=1,LAYOUT=packed" \
#   bash benchmarks/vs_trl.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log_dir=${1:-bench-logs}
mkdir -p "$log_dir"
: "${TRL_BENCH:=$here/trl_anchor.py}"  # the shared anchor, with prefopt's SIZE names added
: "${TRL_PYTHON:=python3}" "${PREFOPT_PYTHON:=python3}"
: "${RUNS:=trl:GC=1 trl:PRECOMPUTE=1,GC=0 prefopt:STAGE=3 prefopt:STAGE=3,PRECOMPUTE=1 prefopt:STAGE=0}"
: "${RUN_TIMEOUT:=300}"
export SIZE=${SIZE:-0.5b} BS=${BS:-8} PYTHONUNBUFFERED=1

# On a GPU, first check the packed layout's attention there (CI tests it only through a reference kernel).
if "$PREFOPT_PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  "$PREFOPT_PYTHON" "$here/gpu_check.py" || { echo "gpu_check failed: no figures recorded" >&2; exit 1; }
fi

for run in $RUNS; do
  system=${run%%:*}
  settings=${run#*:}
  name="${system}_${settings//[=,]/_}"
  case $system in
    trl) script=$TRL_BENCH; py=$TRL_PYTHON ;;
    prefopt) script=$here/dpo_throughput.py; py=$PREFOPT_PYTHON ;;
    *) echo "unknown system in '$run' (trl | prefopt)" >&2; exit 2 ;;
  esac
  echo "=== $name"
  # shellcheck disable=SC2086  # settings are ENV=VAL words by design
  env ${settings//,/ } timeout "$RUN_TIMEOUT" "$py" "$script" >"$log_dir/$name.log" 2>&1
  echo "exit $?"
  grep '^RESULT ' "$log_dir/$name.log" || tail -n 25 "$log_dir/$name.log"
done

python3 - "$log_dir" <<'EOF'
import json, pathlib, sys
rows = []
for log in sorted(pathlib.Path(sys.argv[1]).glob("*.log")):
    for line in log.read_text().splitlines():
        if line.startswith("RESULT "):
            rows.append((log.stem, json.loads(line[7:])))
base = next((r["tokens_per_s"] for name, r in rows if name.startswith("trl_GC_1")), None)
best = max((r["tokens_per_s"] for name, r in rows if name.startswith("trl")), default=None)
# rest GiB: the peak minus what stays allocated between steps (weights, gradients, optimizer states, reference)
width = max([44] + [len(name) for name, _ in rows])
print(f"\n{'run':{width}} {'tokens/s':>10} {'peak GiB':>9} {'rest GiB':>9} {'padding':>8} {'vs TRL default':>15} "
      f"{'vs TRL best':>12}")
for name, r in rows:
    ratio = f"{r['tokens_per_s'] / base:.2f}x" if base else "-"
    vs_best = f"{r['tokens_per_s'] / best:.2f}x" if best else "-"
    pad = f"{r['padding']:.1%}" if r.get("padding") is not None else "-"
    rest = f"{r['peak_gib'] - r['resident_gib']:.2f}" if r.get("resident_gib") is not None else "-"
    print(f"{name:{width}} {r['tokens_per_s']:>10.0f} {r.get('peak_gib') or 0:>9.2f} {rest:>9} {pad:>8} {ratio:>15} "
          f"{vs_best:>12}")
EOF
