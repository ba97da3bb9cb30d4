#!/usr/bin/env bash
# Installs ONNX Runtime's CPU library (npm package onnxruntime-node, pinned below) outside
# any clone, for the tests and benchmarks that run exported ONNX models.
# Where: $SLIM_ONNXRUNTIME_DIR, default /opt/slimtrain/onnxruntime; the package lands in
# DIR/node_modules/onnxruntime-node (linux x64: bin/napi-v6/linux/x64/{libonnxruntime.so.1,
# onnxruntime_binding.node}). Idempotent: exits 0 at once when that version is there.
# Needs node and npm (Debian: nodejs, npm). Prints one line: the version and the path.
set -euo pipefail

version=1.30.0
dir="${SLIM_ONNXRUNTIME_DIR:-/opt/slimtrain/onnxruntime}"
package="$dir/node_modules/onnxruntime-node"
library="$package/bin/napi-v6/linux/x64/libonnxruntime.so.1"

installed_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$1/package.json" 2>/dev/null | head -n 1
}

if [ "$(installed_version "$package")" = "$version" ] && [ -f "$library" ]; then
  echo "onnxruntime-node $version: $package"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "install_onnxruntime.sh: $tool not found (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

# Install into a fresh folder beside DIR, then swap it in, so DIR is never half-installed.
mkdir -p "$(dirname "$dir")"
staging="$(mktemp -d "$dir.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
chmod 755 "$staging"
printf '{"name": "slimtrain-onnxruntime", "private": true}\n' >"$staging/package.json"
# --ignore-scripts: the post-install step downloads optional GPU files from a host this
# machine cannot reach; the CPU library is already inside the package.
(cd "$staging" && npm install --ignore-scripts --no-audit --no-fund --save-exact \
  --loglevel=error "onnxruntime-node@$version" >/dev/null)
if [ ! -f "$staging/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" ]; then
  echo "install_onnxruntime.sh: onnxruntime-node $version has no linux x64 library" >&2
  exit 1
fi
rm -rf "$dir"
mv "$staging" "$dir"
trap - EXIT
echo "onnxruntime-node $version: $package"
