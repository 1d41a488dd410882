#!/usr/bin/env bash
# Instructions and simulated cache misses per request, counted, not timed
# (issue 19): each scenario's Envoy runs under valgrind's callgrind (V8
# and the module included), is loaded by wrk for a warm-up, then its
# counters are zeroed, it is loaded again and they are dumped; per request:
# the instructions executed (in V8's compiled code, i.e. the module and its
# stubs, and in the envoy binary), the misses of a simulated 32 KiB L1 and
# 1 MiB last-level cache. The counts repeat to within 2 % (V8's code to a
# few parts per thousand) whatever else the machine does, so two builds or two scenarios compare
# without the timed runs' noise (BENCHMARKS.md, "Instructions per request").
# Prints a table; writes no report. About 3 minutes for two scenarios, a
# minute more for each further one (Envoy runs ~40x slower under valgrind).
#
# Env: BENCH_SCENARIOS (read_one,one), BENCH_ROUNDS (2), BENCH_SECONDS (10),
# BENCH_WARMUP (20); BENCH_BASELINE_WASM=<path> for the base_* scenarios;
# OIDC_WASM to count a given build of the filter. Extra arguments go to
# bench/bench.py (e.g. --ladder-wasm STEP=PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/modules.sh # bench/deps.sh, then bench/build.sh's paths in $wasm
args=()
if [ -n "${BENCH_BASELINE_WASM:-}" ]; then
  args+=(--baseline-wasm "$BENCH_BASELINE_WASM")
fi
exec python3 bench/bench.py --callgrind --oidc-wasm "${OIDC_WASM:-${wasm[oidc]}}" --empty-wasm "${wasm[empty]}" \
  "${args[@]}" --only "${BENCH_SCENARIOS:-read_one,one}" --rounds "${BENCH_ROUNDS:-2}" \
  --seconds "${BENCH_SECONDS:-10}" --callgrind-warmup "${BENCH_WARMUP:-20}" --pairs 0 --profile-seconds 0 \
  --run-dir .run/bench-instructions "$@"
