#!/usr/bin/env bash
# mem-bench.sh: peak resident memory of a statistics pass against the number of tokens it
# counts (docs/performance.md, "Memory of the statistics"). Each line is one process running
# `valex bench --modes stats` (one statistics object, every iteration's rows new items) for
# ITERS iterations; the peak must not grow with the tokens.
#   scripts/mem-bench.sh [SHAPE] [BATCH] [SEQ] [ITERS...]   (default: mid 4 128 4 16 64 256)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VALEX_BIN:-${CARGO_TARGET_DIR:-target}/release/valex}
SHAPE=${1:-mid}
BATCH=${2:-4}
SEQ=${3:-128}
shift $(( $# < 3 ? $# : 3 ))
ITERS=("$@")
[ ${#ITERS[@]} -gt 0 ] || ITERS=(4 16 64 256)
echo "shape $SHAPE batch ${BATCH}x$SEQ, $("$BIN" --version)"
printf '%8s %10s %14s\n' iters tokens "peak RSS MiB"
for it in "${ITERS[@]}"; do
  line=$("$BIN" bench --shape "$SHAPE" --batch "$BATCH" --seq "$SEQ" --iters "$it" --modes stats | tail -1)
  tokens=$(sed -E 's/.*\(([0-9]+) tokens.*/\1/' <<<"$line")
  peak=$(sed -E 's/.*peak RSS ([0-9]+) MiB.*/\1/' <<<"$line")
  printf '%8s %10s %14s\n' "$it" "$tokens" "$peak"
done
