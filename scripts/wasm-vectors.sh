#!/usr/bin/env bash
# The Wycheproof vectors (vectors/tests/) and bignum/'s own tests (against
# crypto-bigint, 64 to 8192 bits) compiled to wasm32-wasip1, with the
# filter's SIMD flags, and run in Node's V8: the signature arithmetic the
# module ships (bignum/ multiplies with WebAssembly SIMD only on wasm32)
# meets the published vectors there too, not only natively.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $PWD/scripts/wasi-run.mjs" \
  cargo test --release --target wasm32-wasip1 -p envoy-oidc-vectors -p envoy-oidc-bignum --quiet
