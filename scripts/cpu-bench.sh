#!/usr/bin/env bash
# cpu-bench.sh: valex bench and the PyTorch baseline in the same shell run, CPU f32, shapes
# that fit two cores (docs/performance.md). Needs a release build of valex and a Python with
# torch + transformers (PYTHON, default python3). THREADS=N pins both to N threads. ROUNDS rounds (default 3) alternate valex
# and PyTorch so that load changes hit both; the summary reports medians over rounds.
#   scripts/cpu-bench.sh [OUT]   -> OUT/valex-<shape>-r<k>.json, OUT/torch-r<k>.json, OUT/summary.txt
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-cpu-bench-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
BIN=${VALEX_BIN:-${CARGO_TARGET_DIR:-target}/release/valex}
BASE=${TORCH_BASELINE:-../shared/bench/torch_baseline.py}
ROUNDS=${ROUNDS:-3}
# THREADS=N pins both sides to N threads (torch: OMP/MKL; candle: rayon and its barrier pool).
if [ -n "${THREADS:-}" ]; then
  export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS RAYON_NUM_THREADS=$THREADS CANDLE_NUM_THREADS=$THREADS
fi
{
  echo "threads: ${THREADS:-default}"
  echo "machine: $(nproc --all) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  "$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
  "$BIN" --version
} | tee "$OUT/machine.txt"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
  "$BIN" bench --shape tiny --batch 4 --seq 64 --iters 20 --json "$OUT/valex-tiny-r$r.json"
  "$PY" scripts/gpu/torch_shapes.py --baseline "$BASE" --device cpu --models tiny --batch 4 --seq 64 \
    --iters 20 --json "$OUT/torch-tiny-r$r.json" 2>&1 | grep -v Warning
  "$BIN" bench --shape mid --batch 4 --seq 128 --iters 5 --json "$OUT/valex-mid-r$r.json"
  "$PY" scripts/gpu/torch_shapes.py --baseline "$BASE" --device cpu --models mid --batch 4 --seq 128 \
    --iters 5 --json "$OUT/torch-mid-r$r.json" 2>&1 | grep -v Warning
done
echo "after: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$PY" scripts/gpu/compare.py speed "$OUT" | tee "$OUT/summary.txt"
