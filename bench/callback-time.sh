#!/usr/bin/env bash
# How much of a request's cost is the filter's own callback, under load
# (issue 19): builds the filter with OIDC_TIMING (src/shell/timing.rs: each
# request-headers callback timed with Envoy's clock, the mean of every
# 2,000 logged), runs each scenario alone, and prints per scenario the
# worker's µs per request (from req/s) beside the callback's µs (the
# median of its logged means). The difference is what Envoy spends on the
# request outside our callback, the VM's entries and exits included. About
# a minute per scenario; prints, writes no report.
#
# Env: BENCH_SCENARIOS (bypass,one,cc,session,distinct_rs256),
# BENCH_SECONDS (3), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/modules.sh # bench/deps.sh, then bench/build.sh's paths in $wasm
out="$(realpath -m "${CARGO_TARGET_DIR:-target}")/bench/timed"
# Built as build.sh builds the filter, in its own target dir (the filter's
# build must not be overwritten by the timed one).
timed="$(OIDC_TIMING=1 CARGO_TARGET_DIR="$out/target" ./build.sh | tail -n 1)"
IFS=, read -ra scenarios <<<"${BENCH_SCENARIOS:-bypass,one,cc,session,distinct_rs256}"
printf '%-16s %10s %14s %14s %14s\n' scenario 'req/s' 'µs/request' 'callback µs' 'outside µs'
for s in "${scenarios[@]}"; do
  run=".run/bench-timed/$s"
  rm -rf "$run"
  mkdir -p "$run"
  if ! python3 bench/bench.py --oidc-wasm "$timed" --empty-wasm "${wasm[empty]}" --only "$s" \
    --seconds "${BENCH_SECONDS:-3}" --rounds "${BENCH_ROUNDS:-3}" --profile-seconds 0 \
    --run-dir "$run" 2>"$run/bench.err"; then
    cat "$run/bench.err" >&2
    exit 1
  fi
  python3 - "$s" "$run" <<'PY'
import json, pathlib, re, statistics, sys
key, run = sys.argv[1], pathlib.Path(sys.argv[2])
runs = json.loads((run / "results.json").read_text())["scenarios"].get(key, {}).get("runs")
if not runs:
    sys.exit(f"{key}: not a scenario of bench/bench.py (or it did not run)")
rps = statistics.median(r["rps"] for r in runs)
means = [int(m) / 1000 for log in run.glob("*.log")
         for m in re.findall(r"request-headers callback: mean (\d+) ns", log.read_text(errors="replace"))]
if not means:
    sys.exit(f"{key}: no callback timings logged (is it a scenario of our filter?)")
per_request, callback = 1e6 / rps, statistics.median(means)
print(f"{key:16s} {rps:>10,.0f} {per_request:>14.1f} {callback:>14.1f} {per_request - callback:>14.1f}")
PY
done
