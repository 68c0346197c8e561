#!/usr/bin/env bash
# gpu-check.sh: the one script for a lent GPU machine (../shared/GPU.md). Run from the
# repository root; writes everything under $OUT (default ./gpu-out). Not run in CI.
#
# Needs, prepared on the build machine and carried in the ignored folder .gpu/:
#   .gpu/valex               scripts/build-cuda.sh output (target/release/valex, CUDA 13.0, sm_90)
#   .gpu/torch_baseline.py   a copy of ../shared/bench/torch_baseline.py
#   .gpu/candle-unit         (optional) the backend's unit-test binary built with CUDA:
#     source /tmp/cuda13/cuda-env.sh && cargo test --release -p valex-backend-candle \
#       --features cuda --lib --no-run   (then copy the printed executable, stripped)
# On the GPU machine: python3 with torch, transformers and safetensors (the image has them).
#
# Steps (each writes JSON under $OUT; a final table goes to stdout and $OUT/summary.txt):
#  0. (with .gpu/candle-unit) the CUDA unit tests: the fused statistics kernel and the
#     per-chunk reducer, bit for bit against the CPU path;
#  1. correctness, GPU against CPU on the same inputs:
#     a. the HF parity fixtures (tests/fixtures/hf/*): `valex inspect` on cpu/f32, cuda/f32 and
#        cuda/bf16; relative error of logits and every tap vs CPU and vs the HF reference
#        (f32 <= 1e-4, bf16 <= 3e-2);
#     b. statistics of the demo manifest (`valex record`) on cpu/f32 vs cuda/f32 and cuda/bf16;
#  2. speed, in this same call: `valex bench` (plain / layers / stats / ablate) and
#     torch_baseline.py (plain / stats / ablate), Qwen2.5-0.5B and 7B shapes, bf16,
#     batch 16 x 512, 10 iterations;
#  3. where the time goes: `valex bench --profile` per forward section (and an nsys kernel
#     summary when nsys is installed there).
# Usage: scripts/gpu-check.sh [--quick]    (--quick: 0.5B shape only, 3 iterations)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
BIN=${VALEX_BIN:-.gpu/valex}
BASE=${TORCH_BASELINE:-.gpu/torch_baseline.py}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
SHAPES="qwen2_0_5b qwen2_7b"; ITERS=10
if [ "${1:-}" = "--quick" ]; then SHAPES="qwen2_0_5b"; ITERS=3; fi
log() { echo "== $*" | tee -a "$OUT/log.txt"; }

log "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
"$BIN" --version | tee -a "$OUT/device.txt"

if [ -x .gpu/candle-unit ]; then
  log "0. CUDA unit tests (reduce::cuda_tests)"
  timeout 120 .gpu/candle-unit reduce::cuda_tests 2>&1 | tee -a "$OUT/log.txt" | tail -3
fi

log "1a. parity fixtures: cpu f32 / cuda f32 / cuda bf16"
for arch in llama qwen2 mistral llama3 gpt2; do
  dir=tests/fixtures/hf/$arch
  mapfile -t texts < <(python3 -c "import json,sys; [print(t) for t in json.load(open('$dir/reference.json'))['texts']]")
  args=(); for t in "${texts[@]}"; do args+=(--text "$t"); done
  for run in cpu:f32 cuda:f32 cuda:bf16; do
    dev=${run%%:*}; dt=${run##*:}
    timeout 120 "$BIN" inspect --model "$dir" "${args[@]}" --device "$dev" --dtype "$dt" \
      --out "$OUT/inspect-$arch-$dev-$dt.safetensors" --force >> "$OUT/log.txt" 2>&1 \
      || echo "inspect $arch $dev $dt failed" | tee -a "$OUT/log.txt"
  done
done
python3 scripts/gpu/compare.py inspect "$OUT" | tee "$OUT/parity.txt"

log "1b. demo statistics: cpu f32 / cuda f32 / cuda bf16"
for run in cpu:f32 cuda:f32 cuda:bf16; do
  dev=${run%%:*}; dt=${run##*:}
  timeout 300 "$BIN" record experiments/value-study/demo.toml --out "$OUT/stats-$dev-$dt" --force \
    --set model.params.device="$dev" --set model.params.dtype="$dt" >> "$OUT/log.txt" 2>&1 \
    || echo "record $dev $dt failed" | tee -a "$OUT/log.txt"
done
python3 scripts/gpu/compare.py stats "$OUT" | tee "$OUT/stats.txt"

log "2. speed: valex bench and torch_baseline.py, bf16, batch 16 x 512, $ITERS iterations"
for s in $SHAPES; do
  timeout 240 "$BIN" bench --shape "$s" --batch 16 --seq 512 --iters "$ITERS" --dtype bf16 \
    --device cuda --json "$OUT/valex-$s.json" 2>&1 | tee -a "$OUT/log.txt"
done
models=$(echo $SHAPES | tr ' ' ',')
timeout 300 python3 "$BASE" --device cuda --models "$models" --batch 16 --seq 512 --iters "$ITERS" \
  --json "$OUT/torch.json" 2>&1 | tee -a "$OUT/log.txt"
python3 scripts/gpu/compare.py speed "$OUT" | tee "$OUT/summary.txt"

log "3. where valex's time goes: bench --profile (layers, stats), bf16, batch 16 x 512"
for s in $SHAPES; do
  timeout 240 "$BIN" bench --shape "$s" --batch 16 --seq 512 --iters 3 --dtype bf16 \
    --device cuda --modes layers,stats --profile --json "$OUT/profile-$s.json" 2>&1 \
    | tee -a "$OUT/log.txt" | tee "$OUT/profile-$s.txt"
done
if command -v nsys > /dev/null; then
  log "3b. nsys: kernel summary of the 0.5B statistics pass"
  timeout 240 nsys profile -o "$OUT/nsys-0_5b" --force-overwrite true --stats=true \
    "$BIN" bench --shape qwen2_0_5b --batch 16 --seq 512 --iters 3 --dtype bf16 --device cuda \
    --modes stats > "$OUT/nsys-0_5b.txt" 2>&1 || echo "nsys failed" | tee -a "$OUT/log.txt"
  grep -A25 "cuda_gpu_kern_sum" "$OUT/nsys-0_5b.txt" | head -30
fi
