#!/usr/bin/env bash
# A quick run of every benchmark scenario (about a second each, one round,
# no thresholds, no report): each Envoy starts, each scenario answers as it
# should (200, or 401 for the invalid token), the probe's checks pass.
# Pass OIDC_WASM to reuse a built filter (as test.sh does). Under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/modules.sh # bench/deps.sh, then bench/build.sh's paths in $wasm
# The parsers of bench.py that no short run exercises (callgrind's dumps).
(cd bench && python3 -m unittest -q test_bench)
exec python3 bench/bench.py --smoke --oidc-wasm "${OIDC_WASM:-${wasm[oidc]}}" \
  --empty-wasm "${wasm[empty]}" --empty-pruned-wasm "${wasm[empty_pruned]}" --probe-wasm "${wasm[probe]}" \
  --seconds 1 --rounds 1 --pairs 1 --profile-seconds 1 --tokens 5000 --run-dir .run/bench-smoke
