#!/usr/bin/env bash
# Builds the filter: target/wasm/envoy_oidc.wasm, shrunk with wasm-opt.
# Installs what it needs (the wasm32-wasip1 target, Debian's binaryen).
# The last line it prints is the absolute path of the .wasm.
set -euo pipefail
cd "$(dirname "$0")"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1 >&2
fi
if ! command -v wasm-opt >/dev/null 2>&1 || ! command -v wasm-metadce >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen) >&2
fi

# OIDC_LADDER builds a benchmark module that authenticates nothing
# (src/shell/http.rs); only bench/ladder.sh asks for one, into a target
# directory of its own. Left exported in a shell, it would ship one.
if [[ -n "${OIDC_LADDER:-}" && -z "${CARGO_TARGET_DIR:-}" ]]; then
  echo "build.sh: OIDC_LADDER is set: the module would let every request through; unset it" >&2
  exit 1
fi

# wasm32-wasip1, not wasm32-unknown-unknown: the latter leaves wasm-bindgen
# imports in RustCrypto's dependency tree that Envoy refuses to link.
cargo build --release --target wasm32-wasip1 -p envoy-oidc >&2

target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
mkdir -p "$target/wasm"
# binaryen's feature flags: $features.
. scripts/wasm-features.sh

# Only the exports src/shell/exports.txt lists (see there why).
scripts/prune-exports.sh "$target/wasm32-wasip1/release/envoy_oidc.wasm" "$target/wasm/pruned.wasm" "${features[@]}"

# --low-memory-unused: a Rust pointer plus a constant offset never wraps
# below address 1024, so wasm-opt may fold such additions into the
# loads' and stores' offsets (-4.3 KB); --converge repeats -Oz until the
# module stops shrinking (-0.8 KB, ~4 s more).
wasm-opt -Oz --low-memory-unused --converge "${features[@]}" \
  "$target/wasm/pruned.wasm" -o "$target/wasm/envoy_oidc.wasm" >&2

echo "$target/wasm/envoy_oidc.wasm"
