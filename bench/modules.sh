# Sourced by the benchmark scripts, from the repository's root: installs
# what they need (bench/deps.sh) and builds the modules (bench/build.sh),
# whose paths it puts in the associative array `wasm` (oidc, empty,
# empty_pruned, probe). The build's output is taken whole first, so that
# its failure stops the script (`set -e`; a process substitution's would
# not).
bench/deps.sh
modules="$(bench/build.sh)"
declare -A wasm
while IFS='=' read -r k v; do wasm[$k]="$v"; done <<<"$modules"
