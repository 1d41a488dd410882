#!/usr/bin/env bash
# The targets of the cached paths (the forged token's among them) decided
# by many pairs (36 by default, about 15 minutes here; 20 with a baseline): each target's two scenarios
# back to back, 1 s each, which goes first alternating. Prints each pair's
# median, the interval that holds the true median with probability >= 90 %,
# and the verdict; no report (BENCHMARKS.md's "Targets decided by 36 pairs"
# is written from this output). bench/run.sh's 12 pairs leave most
# intervals across their target on this machine.
#
# Env: BENCH_PAIRS (36); BENCH_BASELINE_WASM=<path> adds that build of the
# filter side by side with this one on the bypass, bearer, client-credentials,
# session and forged-token paths (a change's effect, which runs minutes apart hide);
# OIDC_WASM to reuse a built filter.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/modules.sh # bench/deps.sh, then bench/build.sh's paths in $wasm
only=empty,read_none,bypass,read_one,one,jwt_cache,read_basic,cc,read_session,session,badsig,read_deny
args=()
if [ -n "${BENCH_BASELINE_WASM:-}" ]; then
  args+=(--baseline-wasm "$BENCH_BASELINE_WASM")
  only+=,base_bypass,base_one,base_cc,base_session,base_badsig
fi
exec python3 bench/bench.py --oidc-wasm "${OIDC_WASM:-${wasm[oidc]}}" --empty-wasm "${wasm[empty]}" \
  "${args[@]}" --only "$only" --rounds 1 --seconds 1 --pairs "${BENCH_PAIRS:-36}" \
  --profile-seconds 0 --run-dir .run/bench-pairs
