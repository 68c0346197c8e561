#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a fixed number of executions,
# one target after the other, and reports executions and crashes per target (issue 10).
#
#   scripts/fuzz.sh [EXECS] [TARGET...]
#
# EXECS defaults to 1000000 (the developer run); `FUZZ_PROFILE=dev scripts/fuzz.sh 2000` is
# the CI smoke run.
# Each target runs with -jobs=1 (one core) and -max_total_time=$FUZZ_MAX_SECONDS (default
# 3600) as a safety cap, so a slow target may stop before EXECS; the report says so.
# Corpora: fuzz/corpus/<target>/ (git-ignored) is seeded from the repository's own files by
# fuzz/make_seeds.py (and ../shared/datasets/c-voice/*.xlsx, copied at run time when
# present); libFuzzer adds what it finds there. Crashes go to fuzz/artifacts/<target>/.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a stable toolchain
# RUSTC_BOOTSTRAP=1 lets rustc accept the -Z flags cargo-fuzz passes.
# Exit status: 0 if no target crashed, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
execs=${1:-1000000}
shift || true
all=(manifest jsonl c_voice_xlsx model_config stats_file neuron_sets plugin_reply)
targets=("${@:-${all[@]}}")
max_time=${FUZZ_MAX_SECONDS:-3600}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/fuzz/target}
# Safe Rust: no sanitizer (ASan doubles the cost and finds nothing safe code can do);
# release with debug assertions and overflow checks, so overflows are crashes too.
# FUZZ_PROFILE=dev (the CI smoke) builds fuzz/Cargo.toml's cheaper dev profile instead.
if [ "${FUZZ_PROFILE:-release}" = dev ]; then
  build_flags=(--dev --debug-assertions --sanitizer none)
  profile_dir=debug
else
  build_flags=(-O --debug-assertions --sanitizer none)
  profile_dir=release
fi

cargo fuzz build "${build_flags[@]}"
bin_dir=$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/$profile_dir

python3 fuzz/make_seeds.py "$root" fuzz/corpus

failed=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
  log="fuzz/artifacts/$t/last-run.log"
  start=$(date +%s)
  set +e
  # The built binary, not `cargo fuzz run`: no cargo invocation (and no rebuild) per target.
  # With -jobs libFuzzer runs the job in a child that logs to ./fuzz-0.log: run it from the
  # artifacts folder and append that log to ours.
  (cd "fuzz/artifacts/$t" && rm -f fuzz-0.log &&
    "$bin_dir/$t" "$root/fuzz/corpus/$t" \
      -runs="$execs" -max_total_time="$max_time" -jobs=1 -workers=1 -timeout=10 \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$root/fuzz/artifacts/$t/"
    rc=$?; cat fuzz-0.log 2>/dev/null; rm -f fuzz-0.log; exit $rc) >"$log" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  done_runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  if [ "$rc" -ne 0 ] || [ -n "$crashes" ]; then
    failed=1
    line="$t: ${done_runs:-?} execs in ${secs}s: CRASH (exit $rc), artifacts: ${crashes:-none written}, log: $log"
  else
    line="$t: ${done_runs:-?} execs in ${secs}s: no crash"
    if [ "${done_runs:-0}" -lt "$execs" ]; then line="$line (stopped by the ${max_time}s cap)"; fi
  fi
  echo "$line"
  summary+=("$line")
done
echo
echo "fuzz summary (EXECS=$execs per target)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
