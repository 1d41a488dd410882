#!/usr/bin/env bash
# Installs what the deploy tests need beyond scripts/setup.sh:
# - Debian `skopeo` and `docker-registry` (OCI push/pull against a loopback
#   registry, tests/e2e/deploy-oci.test.mjs);
# - the npm packages of tests/e2e/deploy/ (Istio's resource models for
#   manifest validation, ajv for config.schema.json, yaml).
# Idempotent and quiet; quick when everything is there. Safe to run by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "setup-deploy: $*" >&2; }
# as_root, apt_install: as root or through sudo.
. "$ROOT/scripts/apt.sh"

# 1. skopeo and docker-registry from Debian. The package's own service
# (all interfaces, port 5000) is not used: the tests start their own registry
# on 127.0.0.1 with a temporary config, and stop it.
missing=()
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # Keep the package's postinst from starting the registry service.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' > $policy && chmod +x $policy" && own_policy=1
  fi
  apt_install "${missing[@]}"
  if [ "$own_policy" = 1 ]; then as_root rm -f "$policy"; fi
fi

# 2. npm packages of tests/e2e/deploy, reinstalled when the lockfile changed.
DIR="$ROOT/tests/e2e/deploy"
STAMP="$DIR/node_modules/.lock-sha256"
want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ ! -d "$DIR/node_modules" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "npm ci in tests/e2e/deploy"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$STAMP"
fi
