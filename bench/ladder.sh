#!/usr/bin/env bash
# Where the fixed cost of a request goes (issue 19): builds the filter once
# per step of src/shell/http.rs's OIDC_LADDER (each request stopped after
# reading its headers; after entering the engine), and runs them beside the empty
# filter's ladder and our bypass path, alternating, in one run, into the
# section "Our request, step by step" of BENCHMARKS.md (bench/run.sh keeps
# it). About 4 minutes.
#
# Env: BENCH_SECONDS (4), BENCH_ROUNDS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/modules.sh # bench/deps.sh, then bench/build.sh's paths in $wasm
out="$(realpath -m "${CARGO_TARGET_DIR:-target}")/bench/ladder"
mkdir -p "$out"
ladder=()
for step in headers engine; do
  # Built as build.sh builds the filter (pruned exports, the same wasm-opt),
  # in its own target dir: the variants must not overwrite the filter's build.
  built="$(OIDC_LADDER="$step" CARGO_TARGET_DIR="$out/target" ./build.sh | tail -n 1)"
  cp "$built" "$out/$step.wasm"
  ladder+=(--ladder-wasm "$step=$out/$step.wasm")
done
exec python3 bench/bench.py --oidc-wasm "${wasm[oidc]}" --empty-wasm "${wasm[empty]}" "${ladder[@]}" \
  --probe-wasm "${wasm[probe]}" \
  --seconds "${BENCH_SECONDS:-4}" --rounds "${BENCH_ROUNDS:-5}" --run-dir .run/bench-ladder \
  --only empty,read_none,bypass,probe --section-of BENCHMARKS.md
