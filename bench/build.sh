#!/usr/bin/env bash
# Builds the benchmark's modules and prints their paths, one a line:
#   oidc=<the filter, via ../build.sh>
#   empty=<bench/empty-filter>
#   empty_pruned=<the same, exporting only what the filter exports>
#   probe=<bench/probe>
# The two bench crates get the filter's release profile (their Cargo.toml)
# and the same wasm-opt flags as ../build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

oidc="$(./build.sh | tail -n 1)"
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")/bench"
mkdir -p "$target/wasm"
. scripts/wasm-features.sh # binaryen's feature flags: $features
for crate in empty-filter probe; do
  # Run from the crate's directory so its .cargo/config.toml applies.
  (cd "bench/$crate" && CARGO_TARGET_DIR="$target" cargo build --release --target wasm32-wasip1 -q) >&2
  name="${crate//-/_}"
  wasm-opt -Oz "${features[@]}" "$target/wasm32-wasip1/release/$name.wasm" -o "$target/wasm/$name.wasm" >&2
done
# The empty filter exporting only the callbacks ours exports.
scripts/prune-exports.sh "$target/wasm32-wasip1/release/empty_filter.wasm" "$target/wasm/empty_pruned0.wasm" \
  "${features[@]}"
wasm-opt -Oz "${features[@]}" "$target/wasm/empty_pruned0.wasm" -o "$target/wasm/empty_pruned.wasm" >&2
echo "oidc=$oidc"
echo "empty=$target/wasm/empty_filter.wasm"
echo "empty_pruned=$target/wasm/empty_pruned.wasm"
echo "probe=$target/wasm/probe.wasm"
