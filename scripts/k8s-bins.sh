#!/usr/bin/env bash
# k8s-bins.sh: build the upstream Kubernetes components and etcd the lab and
# the integration tests run, and print the directory that holds them.
#
# One multi-call binary (test/k8sbuild) is built, and kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl and
# etcd are symlinks to it in the same directory. The directory is
#   ~/.cache/tsys-ci/k8s/<kubernetes version>-<hash of the inputs>/
# (TSYS_CI_CACHE overrides ~/.cache/tsys-ci). The inputs are the module's
# files, this script and the Go version: a second run rebuilds nothing, a
# changed input builds into a new directory.
#
# Usage: scripts/k8s-bins.sh        prints the directory on stdout; progress on stderr
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/test/k8sbuild
cache=${TSYS_CI_CACHE:-$HOME/.cache/tsys-ci}

log() { printf '[k8s-bins %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "k8s-bins.sh: go is not on PATH; install Go 1.26 first" >&2; exit 1; }

version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3} $1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2}' "$src/go.mod" | head -n1)
[[ $version =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || {
	echo "k8s-bins.sh: cannot read the k8s.io/kubernetes version from $src/go.mod (got '$version')" >&2
	exit 1
}
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}

key=$({
	go version
	cat "$0"
	cd "$src" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs sha256sum
} | sha256sum | cut -c1-16)
out=$cache/k8s/$version-$key
names=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd)

if [[ -x $out/k8s ]]; then
	log "cached: $out"
	echo "$out"
	exit 0
fi

mkdir -p "$cache/k8s"
# Two test binaries may ask at once: one builds, the other waits for it.
exec 9>"$cache/k8s/.lock"
if ! flock -n 9; then
	log "another k8s-bins.sh is building; waiting for it"
	flock 9
fi
if [[ -x $out/k8s ]]; then
	log "cached: $out"
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d "$cache/k8s/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
logf=$tmp/build.log
pkg=k8s.io/component-base/version
cpkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in $pkg $cpkg; do
	ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

log "building Kubernetes $version components and etcd into $out (cold: several minutes on 2 cores)"
start=$(date +%s)
(
	exec 9>&- # the lock is the build's, not the ticker's
	while sleep 30; do log "still building ($(($(date +%s) - start)) s)"; done
) &
ticker=$!
status=0
(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$tmp/k8s" .) >"$logf" 2>&1 || status=$?
kill "$ticker" 2>/dev/null || true
wait "$ticker" 2>/dev/null || true
if ((status != 0)); then
	keep=$cache/k8s/build-failed.log
	cp "$logf" "$keep"
	tail -n 20 "$keep" >&2
	echo "k8s-bins.sh: go build in $src failed (exit $status); full log: $keep" >&2
	exit 1
fi
for n in "${names[@]}"; do ln -s k8s "$tmp/$n"; done
# Check the version strings took (no pipe into head: set -o pipefail).
v=$("$tmp/kube-apiserver" --version)
[[ $v == "Kubernetes $version" ]] || { echo "k8s-bins.sh: built kube-apiserver says '$v', want 'Kubernetes $version'" >&2; exit 1; }
e=$("$tmp/etcd" --version)
log "${e%%$'\n'*}, $v"
rm -f "$logf"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
log "built in $(($(date +%s) - start)) s: $out ($(du -sh "$out/k8s" | cut -f1))"
echo "$out"
