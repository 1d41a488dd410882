#!/usr/bin/env bash
# prune-exports.sh IN OUT [BINARYEN_FEATURE_FLAGS...]: IN with only the
# exports src/shell/exports.txt lists (see there why), for wasm-opt to shrink
# next. A wasm-metadce graph whose one root reaches each kept export: metadce
# removes every other export and what only it reached. Fails, naming the
# difference, unless OUT exports exactly the list (a name IN lacks, a typo,
# would otherwise pass silently and ship a module without it). The flags
# name the post-MVP features rustc emitted (scripts/wasm-features.sh). Used by
# build.sh for the filter, and by bench/build.sh for the empty filter made
# to export the same.
set -euo pipefail
in="$1" out="$2"
shift 2
features=("$@")
list="$(dirname "$0")/../src/shell/exports.txt"
keep=()
while IFS= read -r line || [ -n "$line" ]; do
  name="${line%$'\r'}"
  case "$name" in '' | '#'*) continue ;; esac
  if ! [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "prune-exports: $list: not an export name: '$name'" >&2
    exit 1
  fi
  keep+=("$name")
done <"$list"
if [ "${#keep[@]}" -eq 0 ]; then
  echo "prune-exports: $list lists no export" >&2
  exit 1
fi
graph='[{"name":"keep","root":true,"reaches":['
for name in "${keep[@]}"; do graph+="\"e:$name\","; done
graph="${graph%,}]}"
for name in "${keep[@]}"; do graph+=",{\"name\":\"e:$name\",\"export\":\"$name\"}"; done
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
printf '%s]\n' "$graph" >"$tmp"
# metadce prints what it removed on stdout: not this script's output.
wasm-metadce "${features[@]}" -f "$tmp" "$in" -o "$out" >/dev/null
got="$(wasm-dis "${features[@]}" "$out" | sed -n 's/^ (export "\([^"]*\)".*/\1/p' | sort)"
want="$(printf '%s\n' "${keep[@]}" | sort -u)"
if [ "$got" != "$want" ]; then
  echo "prune-exports: $out does not export exactly $list:" >&2
  diff <(echo "$want") <(echo "$got") | sed -n 's/^< /  missing: /p; s/^> /  extra: /p' >&2
  exit 1
fi
