#!/usr/bin/env bash
# prune-exports.sh IN OUT: IN with only the exports src/shell/exports.txt
# lists (see there why), for wasm-opt to shrink next. A wasm-metadce graph
# whose one root reaches each kept export: metadce removes every other
# export and what only it reached (and prints their names, dropped here).
# Used by build.sh for the filter, and by bench/build.sh for the empty
# filter made to export the same.
set -euo pipefail
in="$1" out="$2"
list="$(dirname "$0")/../src/shell/exports.txt"
keep=()
while read -r name; do
  case "$name" in '' | '#'*) ;; *) keep+=("$name") ;; esac
done <"$list"
graph='[{"name":"keep","root":true,"reaches":['
for name in "${keep[@]}"; do graph+="\"e:$name\","; done
graph="${graph%,}]}"
for name in "${keep[@]}"; do graph+=",{\"name\":\"e:$name\",\"export\":\"$name\"}"; done
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
printf '%s]\n' "$graph" >"$tmp"
# The post-MVP features rustc emitted (SIMD: .cargo/config.toml), as for wasm-opt.
wasm-metadce --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-mutable-globals --enable-simd -f "$tmp" "$in" -o "$out" >/dev/null
