#!/usr/bin/env bash
# Runs every test: host unit tests of the core, harness tests over the
# built .wasm, and end-to-end tests with real Envoy, a real OpenID
# provider and an upstream echo. Installs what it needs; uses free ports.
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
scripts/setup-deploy.sh
OIDC_WASM="$(./build.sh | tail -n 1)"
export OIDC_WASM
echo "== built $OIDC_WASM ($(stat -c %s "$OIDC_WASM") bytes)"

echo "== lints: rustfmt, clippy (no unwrap/expect/indexing/panic in the filter)"
cargo fmt --all -- --check
cargo clippy -p envoy-oidc --target wasm32-wasip1 --quiet -- -D warnings
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test (core unit tests, harness tests over the .wasm)"
cargo test --workspace --quiet

echo "== Wycheproof vectors in V8 (the module's SIMD arithmetic, compiled to wasm32)"
scripts/wasm-vectors.sh

echo "== end to end (real Envoy, oidc-provider, echo, Chromium)"
node --test --test-reporter=spec tests/e2e/

echo "== benchmark smoke (every scenario answers as it should; no thresholds)"
bench/smoke.sh
