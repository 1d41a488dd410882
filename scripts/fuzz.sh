#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s, every target
#
# Uses a nightly toolchain when one is installed, else the default
# toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). Installs
# cargo-fuzz if it is missing. Seeds come from fuzz/corpus/<target>/
# (committed, left untouched); what libFuzzer learns goes to
# fuzz/work/<target>/ (ignored by git). A crash, an assertion of
# testkit/src/fuzzing.rs or a timeout is written to
# fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ so
# `cargo test` replays it for good.
# Prints the executions per target; exits 1 if any target found something.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

ALL_TARGETS=(core engine jwt jwks discovery token_response basic cookie seal config)
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, got '$SECONDS_PER_TARGET'" >&2; exit 2 ;;
esac

say() { echo "fuzz: $*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked >&2
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  CARGO=(cargo +nightly fuzz)
  say "toolchain: $(rustup run nightly rustc --version)"
else
  export RUSTC_BOOTSTRAP=1
  CARGO=(cargo fuzz)
  say "toolchain: $(rustc --version) with RUSTC_BOOTSTRAP=1 (no nightly installed)"
fi

# -a: debug assertions (overflow checks) on, as in `cargo test`.
say "building the targets"
"${CARGO[@]}" build -a >&2

max_len() {
  case "$1" in
    core | jwt | seal | cookie) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

declare -A RUNS STATUS
found=0
for t in "${TARGETS[@]}"; do
  mkdir -p "work/$t" "artifacts/$t" "corpus/$t"
  dict=()
  [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
  log="work/$t.log"
  say "$t: ${SECONDS_PER_TARGET} s"
  set +e
  # The outer timeout is a backstop: libFuzzer stops itself at max_total_time.
  timeout --kill-after=10 $((SECONDS_PER_TARGET + 120)) \
    "${CARGO[@]}" run -a "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$(max_len "$t")" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" "${dict[@]}" >"$log" 2>&1
  rc=$?
  set -e
  runs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
  [ -n "$runs" ] || runs="$(grep -o '^Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -n 1)"
  RUNS[$t]="${runs:-?}"
  if [ "$rc" -eq 0 ]; then
    STATUS[$t]="ok"
  else
    found=1
    artifact="$(grep -o 'artifacts/[^ ]*' "$log" | tail -n 1)"
    STATUS[$t]="FINDING (exit $rc) ${artifact:-see fuzz/$log}"
    grep -m 3 -E 'panicked at|ERROR: libFuzzer|^a credential|passed upstream' "$log" | sed 's/^/    /' >&2 || true
  fi
done

printf '\n%-16s %12s  %s\n' target executions result
for t in "${TARGETS[@]}"; do
  printf '%-16s %12s  %s\n' "$t" "${RUNS[$t]}" "${STATUS[$t]}"
done
exit "$found"
