#!/usr/bin/env bash
# Runs the fuzz targets (cargo-fuzz on the nightly toolchain; wisp itself builds on stable):
#   tests/fuzz/run.sh SECONDS [TARGET...]     every target when none is named
# Each target runs for SECONDS (two at a time: one per core) from its seeds
# (tests/fuzz/seeds/<t>, read only) and its working corpus (target/fuzz-corpus/<t>, kept
# between runs). Debug assertions are on, so an arithmetic overflow is a crash too. A crash
# leaves its input in tests/fuzz/artifacts/<t>/ and fails the run: turn it into a regression
# by copying it to tests/fuzz/regressions/<t>/<what-it-found>. Prints each target's
# executions, coverage and time (libFuzzer's final stats) to target/fuzz-<t>.log.
# FUZZ_RUNS=N also stops a target after N executions (a campaign: FUZZ_RUNS=10000000 with a
# long SECONDS as the bound). FUZZ_SANITIZER=none builds without AddressSanitizer (wisp and
# its parsers are safe Rust, so ASan finds little there; without it `offer` runs ~6x faster).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(offer sdpfrag bodies rtp rtcp turn)
FUZZ=(cargo +nightly fuzz)
SAN=(${FUZZ_SANITIZER:+-s "$FUZZ_SANITIZER"})
"${FUZZ[@]}" build --fuzz-dir tests/fuzz -a "${SAN[@]}"
run_one() {
  local t=$1
  mkdir -p "target/fuzz-corpus/$t"
  # -max_total_time bounds it; -rss_limit_mb catches a leak; -timeout a hang (seconds).
  if "${FUZZ[@]}" run --fuzz-dir tests/fuzz -a "${SAN[@]}" "$t" "target/fuzz-corpus/$t" "tests/fuzz/seeds/$t" -- \
      -max_total_time="$SECS" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"target/fuzz-$t.log" 2>&1; then
    local execs cov
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "target/fuzz-$t.log")
    cov=$(grep -o 'cov: [0-9]*' "target/fuzz-$t.log" | tail -1)
    local took
    took=$(awk '/^Done [0-9]+ runs in/ { print $5 }' "target/fuzz-$t.log")
    echo "ok   fuzz $t: ${execs:-?} executions in ${took:-$SECS} s, $cov"
  else
    echo "FAIL fuzz $t (target/fuzz-$t.log):"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "target/fuzz-$t.log" | head -8
    return 1
  fi
}
fail=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}" || fail=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
