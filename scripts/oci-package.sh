#!/usr/bin/env bash
# Packages the filter module as OCI images that Istio (WasmPlugin) and
# Envoy Gateway (EnvoyExtensionPolicy) pull, without Docker.
#
#   scripts/oci-package.sh [--wasm FILE] [--out DIR] [--tag TAG] [--push REPO] [--insecure]
#
#   --wasm FILE   the module (default: the last line of ./build.sh)
#   --out DIR     where to write the OCI image layout (default: target/oci)
#   --tag TAG     tag of the wasm-artifact image; the compat image is TAG-compat
#                 (default: the root crate's version)
#   --push REPO   also push both tags with skopeo, e.g. ghcr.io/acme/envoy-oidc
#                 or 127.0.0.1:5000/envoy-oidc (registry credentials: skopeo login)
#   --insecure    plain-http registry without TLS verification (loopback tests)
#
# Writes one OCI image layout (oci-layout, index.json, blobs/sha256/...) with
# two images:
#   TAG         the Wasm OCI artifact ("oci" variant): config and two layers,
#               application/vnd.module.wasm.config.v1+json (a small JSON
#               describing the module) and
#               application/vnd.module.wasm.content.layer.v1+wasm (the module's
#               bytes as they are, so the layer digest is the module's sha256).
#               Istio's and Envoy Gateway's image fetchers accept this variant
#               only with exactly these two layers.
#   TAG-compat  the "compat" variant: a plain OCI image whose single
#               tar+gzip layer holds /plugin.wasm (for registries and tools
#               that refuse custom media types).
# Output is reproducible (fixed tar metadata, gzip -n): the same module gives
# the same digests. The last lines printed are, for each image,
#   <tag> sha256:<manifest digest>
# and `module sha256:<module digest>`. The manifest digest is what Istio's
# WasmPlugin `sha256` and `url: oci://REPO@sha256:...` pin; Envoy's
# `vm_config.code.remote.sha256` pins the module digest instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WASM="" OUT="$ROOT/target/oci" TAG="" PUSH="" INSECURE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wasm) WASM="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --push) PUSH="$2"; shift 2 ;;
    --insecure) INSECURE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "oci-package: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$WASM" ]; then
  WASM="$(./build.sh | tail -n 1)"
fi
[ -f "$WASM" ] || { echo "oci-package: no module at $WASM" >&2; exit 1; }
if [ "$(head -c 4 "$WASM" | od -An -tx1 | tr -d ' \n')" != "0061736d" ]; then
  echo "oci-package: $WASM is not a WebAssembly module" >&2; exit 1
fi
if [ -z "$TAG" ]; then
  TAG="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

rm -rf "$OUT"
mkdir -p "$OUT/blobs/sha256"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Adds a file as a blob; prints its digest (hex).
add_blob() {
  local d
  d="$(sha "$1")"
  cp "$1" "$OUT/blobs/sha256/$d"
  echo "$d"
}
descriptor() { # media type, file, [annotations json]
  local d s
  d="$(add_blob "$2")"; s="$(size "$2")"
  if [ -n "${3:-}" ]; then
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":%s}' "$1" "$d" "$s" "$3"
  else
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$1" "$d" "$s"
  fi
}

MODULE_SHA="$(sha "$WASM")"

# --- the Wasm OCI artifact ("oci" variant)
printf '{"type":"envoy_proxy","abiVersions":["proxy_abi_version_0_2_1"],"module":"envoy_oidc.wasm"}' > "$WORK/wasm-config.json"
CONFIG_DESC="$(descriptor application/vnd.module.wasm.config.v1+json "$WORK/wasm-config.json")"
CONFIG_LAYER_DESC="$CONFIG_DESC"
WASM_LAYER_DESC="$(descriptor application/vnd.module.wasm.content.layer.v1+wasm "$WASM" '{"org.opencontainers.image.title":"plugin.wasm"}')"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s,%s]}' \
  "$CONFIG_DESC" "$CONFIG_LAYER_DESC" "$WASM_LAYER_DESC" > "$WORK/manifest-oci.json"
OCI_MANIFEST_DESC="$(descriptor application/vnd.oci.image.manifest.v1+json "$WORK/manifest-oci.json" "{\"org.opencontainers.image.ref.name\":\"$TAG\"}")"

# --- the compat variant: one tar+gzip layer with /plugin.wasm
mkdir -p "$WORK/rootfs"
cp "$WASM" "$WORK/rootfs/plugin.wasm"
chmod 0644 "$WORK/rootfs/plugin.wasm"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$WORK/rootfs" -cf "$WORK/layer.tar" plugin.wasm
gzip -n -9 -c "$WORK/layer.tar" > "$WORK/layer.tar.gz"
DIFF_ID="$(sha "$WORK/layer.tar")"
printf '{"architecture":"wasm","os":"wasip1","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$DIFF_ID" > "$WORK/image-config.json"
IMG_CONFIG_DESC="$(descriptor application/vnd.oci.image.config.v1+json "$WORK/image-config.json")"
TAR_LAYER_DESC="$(descriptor application/vnd.oci.image.layer.v1.tar+gzip "$WORK/layer.tar.gz")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
  "$IMG_CONFIG_DESC" "$TAR_LAYER_DESC" > "$WORK/manifest-compat.json"
COMPAT_MANIFEST_DESC="$(descriptor application/vnd.oci.image.manifest.v1+json "$WORK/manifest-compat.json" "{\"org.opencontainers.image.ref.name\":\"$TAG-compat\"}")"

printf '{"imageLayoutVersion":"1.0.0"}' > "$OUT/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
  "$OCI_MANIFEST_DESC" "$COMPAT_MANIFEST_DESC" > "$OUT/index.json"

OCI_DIGEST="sha256:$(sha "$WORK/manifest-oci.json")"
COMPAT_DIGEST="sha256:$(sha "$WORK/manifest-compat.json")"

if [ -n "$PUSH" ]; then
  command -v skopeo >/dev/null || { echo "oci-package: --push needs skopeo (scripts/setup-deploy.sh installs it)" >&2; exit 1; }
  tls=()
  [ "$INSECURE" = 1 ] && tls=(--dest-tls-verify=false)
  for t in "$TAG" "$TAG-compat"; do
    skopeo copy --quiet --preserve-digests "${tls[@]}" "oci:$OUT:$t" "docker://$PUSH:$t" >&2
  done
fi

echo "layout $OUT"
echo "$TAG $OCI_DIGEST"
echo "$TAG-compat $COMPAT_DIGEST"
echo "module sha256:$MODULE_SHA"
