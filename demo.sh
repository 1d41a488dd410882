#!/usr/bin/env bash
# Runs the whole thing on this machine, in the foreground:
#   the test OpenID provider  http://127.0.0.1:3000  (Cognito-like)
#   an upstream echo          http://127.0.0.1:8080
#   Envoy with the filter     http://127.0.0.1:10000/oidcroute/...  (admin :9901)
# then prints READY and commands to try. Ctrl-C stops everything.
#
# OIDC_WASM=path/to/module.wasm skips ./build.sh and uses that module.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
RUN="$ROOT/.run/demo"
mkdir -p "$RUN"

pids=()
cleanup() {
  trap - EXIT INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    echo "demo: stopping" >&2
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Refuse to start next to something already on our ports.
for port in 3000 8080 9901 10000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is in use; stop whatever listens there first" >&2
    exit 1
  fi
done

scripts/setup.sh --no-browser

# The filter module: the last line ./build.sh prints is its path.
if [ -n "${OIDC_WASM:-}" ]; then
  wasm="$OIDC_WASM"
else
  echo "demo: building the filter (./build.sh)" >&2
  if ! wasm="$(./build.sh 2>"$RUN/build.log" | tail -n 1)" || [ -z "$wasm" ]; then
    tail -n 30 "$RUN/build.log" >&2
    echo "demo: ./build.sh failed; full log in $RUN/build.log" >&2
    exit 1
  fi
fi
[ -f "$wasm" ] || { echo "demo: no filter module at '$wasm'" >&2; exit 1; }

# envoy.yaml loads target/wasm/envoy_oidc.wasm; if the build put the module
# elsewhere, run a copy of envoy.yaml that names the real path.
config="$ROOT/envoy.yaml"
if [ "$(realpath "$wasm")" != "$(realpath -m target/wasm/envoy_oidc.wasm)" ]; then
  config="$RUN/envoy.yaml"
  sed "s|target/wasm/envoy_oidc.wasm|$(realpath "$wasm")|" "$ROOT/envoy.yaml" > "$config"
fi

node tests/e2e/provider.mjs --port 3000 >"$RUN/provider.log" 2>&1 &
pids+=($!)
node tests/e2e/echo.mjs --port 8080 >"$RUN/echo.log" 2>&1 &
pids+=($!)
# Envoy stays a child of this shell: the PyPI build exits with its parent.
.venv/bin/envoy -c "$config" --concurrency 2 -l info --disable-hot-restart \
  >"$RUN/envoy.log" 2>&1 &
pids+=($!)

# Wait until all three answer (20 s at most).
ready() {
  curl -sf -o /dev/null http://127.0.0.1:3000/.well-known/openid-configuration &&
    curl -sf -o /dev/null http://127.0.0.1:8080/__received &&
    curl -sf -o /dev/null http://127.0.0.1:9901/ready
}
for _ in $(seq 200); do
  ready && break
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: a process died during startup; logs in $RUN:" >&2
      tail -n 20 "$RUN"/*.log >&2
      exit 1
    fi
  done
  sleep 0.1
done
if ! ready; then
  echo "demo: not ready after 20 s; logs in $RUN:" >&2
  tail -n 20 "$RUN"/*.log >&2
  exit 1
fi

cat <<'EOF'
READY

# A client-credentials access token from the provider (Cognito-like JWT):
TOKEN=$(curl -s -u demo-client:demo-secret -d grant_type=client_credentials \
  -d scope=kongresource/scope1 http://127.0.0.1:3000/token \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

# With the token: 200, the echo shows what reached the upstream (path /get):
curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:10000/oidcroute/get

# Without a token: 401 with WWW-Authenticate: Bearer realm="127.0.0.1:3000"
curl -i http://127.0.0.1:10000/oidcroute/get

# Client credentials through the gateway: it gets the token for you (200):
curl -i -u demo-client:demo-secret http://127.0.0.1:10000/oidcroute/get

# Browser login: open http://127.0.0.1:10000/oidcroute/get in a browser on
# this machine (any login and password at the provider's form), or see the
# redirect a browser gets:
curl -si -H 'Accept: text/html' http://127.0.0.1:10000/oidcroute/get | head -3
# Logout: open http://127.0.0.1:10000/oidcroute/logout and press "Log out".
# Only a POST (or DELETE) there logs out: a plain GET, such as a link from
# another site, is passed on to the upstream, which shows that button. With
# curl and the browser's session cookie (302 to the provider's logout, and
# the cookie cleared):
curl -si -X POST -H 'Cookie: session=<value from the browser>' http://127.0.0.1:10000/oidcroute/logout | head -5

EOF
echo "Logs: $RUN/{provider,echo,envoy}.log   Stop: Ctrl-C"

# Stay in the foreground until a signal, or until one of the three exits.
set +e
wait -n "${pids[@]}"
status=$?
echo "demo: a process exited (status $status); logs in $RUN" >&2
exit 1
