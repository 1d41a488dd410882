#!/usr/bin/env bash
# The benchmark, from a fresh clone, in one command (about 17 minutes on a
# 2-core machine): builds the filter, the empty filter and the timing probe,
# mints tokens, starts the Envoys (--concurrency 1, direct_response), runs
# every scenario with wrk in alternating, repeated rounds, and rewrites
# BENCHMARKS.md and bench/chart.svg; then the cached paths again with two
# Envoy workers (--concurrency 2) into a section of BENCHMARKS.md.
#
# Env: BENCH_SECONDS (5) and BENCH_ROUNDS (3) per scenario run; BENCH_PAIRS
# (12): times each target's two scenarios then run back to back (1 s each);
# BENCH_BASELINE_WASM=<path> adds that build of the filter (e.g. an older
# commit's target/wasm/envoy_oidc.wasm) on the bypass, cached bearer, client
# credentials and session paths and on first-seen RS256 tokens, in the rounds
# and in pairs against this build (BENCHMARKS.md, under the targets).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/modules.sh # bench/deps.sh, then bench/build.sh's paths in $wasm
args=(--oidc-wasm "${wasm[oidc]}" --empty-wasm "${wasm[empty]}" --empty-pruned-wasm "${wasm[empty_pruned]}"
      --probe-wasm "${wasm[probe]}"
      --seconds "${BENCH_SECONDS:-5}" --rounds "${BENCH_ROUNDS:-3}" --pairs "${BENCH_PAIRS:-12}"
      --report BENCHMARKS.md --chart bench/chart.svg)
if [ -n "${BENCH_BASELINE_WASM:-}" ]; then
  args+=(--baseline-wasm "$BENCH_BASELINE_WASM")
fi
python3 bench/bench.py "${args[@]}"
# The cached paths again with two Envoy workers (and two wrk threads), into
# their own section of BENCHMARKS.md.
python3 bench/bench.py --oidc-wasm "${wasm[oidc]}" --empty-wasm "${wasm[empty]}" \
  --seconds "${BENCH_SECONDS:-5}" --rounds 2 --pairs 0 --profile-seconds 0 --concurrency 2 --section-of BENCHMARKS.md \
  --only none,empty,bypass,read_one,one,read_basic,cc,read_session,session,jwt_cache
