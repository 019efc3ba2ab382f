#!/usr/bin/env bash
# cosign.sh: builds the real cosign CLI (v2.6.5) from the Go module proxy into
# ~/.cache/tsys-ci/cosign/v2.6.5/ (TSYS_CI_CACHE overrides ~/.cache/tsys-ci, as for
# the other caches) if it is not there yet, and prints its path.
# The registry tests use it to prove that tsys-ci's signatures and cosign's
# are interchangeable. A cold build takes about 3 minutes on 2 cores.
set -euo pipefail
version=v2.6.5
dir="${TSYS_CI_CACHE:-$HOME/.cache/tsys-ci}/cosign/$version"
bin="$dir/cosign"
if [[ ! -x $bin ]]; then
	mkdir -p "$dir"
	echo "cosign.sh: building cosign $version into $dir (about 3 minutes cold)" >&2
	# A module of its own: cosign's dependencies must not touch tsys-ci's go.mod.
	GOBIN="$dir" GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 \
		go install "github.com/sigstore/cosign/v2/cmd/cosign@$version" >&2
fi
echo "$bin"
