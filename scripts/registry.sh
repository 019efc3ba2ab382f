#!/usr/bin/env bash
# registry.sh: run the lab's OCI registry (distribution v3, built by
# scripts/addon-images.sh) on loopback with a temporary storage folder, in the
# foreground, for trying pushes and pulls by hand outside the lab. Tests use
# the Go helper test/addons/localregistry instead.
#
# Usage: scripts/registry.sh [ADDR]   (default 127.0.0.1:5000; Ctrl-C stops it
#        and removes the storage folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
addr=${1:-127.0.0.1:5000}
case $addr in
127.* | localhost:*) ;;
*) echo "registry.sh: $addr is not a loopback address; this registry has no authentication" >&2; exit 2 ;;
esac

line=$("$root/scripts/addon-images.sh" registry)
bin=$(dirname "${line#*$'\t'}")/bin/registry
[[ -x $bin ]] || { echo "registry.sh: $bin is missing; remove its cache folder and run scripts/addon-images.sh registry" >&2; exit 1; }

dir=$(mktemp -d /tmp/tsys-ci-registry.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
echo "registry.sh: serving on http://$addr (storage $dir/data); Ctrl-C stops it" >&2
OTEL_TRACES_EXPORTER=none "$bin" serve "$dir/config.yml"
