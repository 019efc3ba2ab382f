#!/usr/bin/env bash
# test.sh: the whole test suite, as `make test` runs it, one timed stage at a time.
#
# Every outside program the tests use must be present (scripts/deps.sh installs
# them), so tests that would skip on a developer's machine fail here instead.
set -euo pipefail
cd "$(dirname "$0")/.."

export TSYS_CI_REQUIRE_TOOLS=1
export GOFLAGS="${GOFLAGS:-} -count=1"

declare -a names=() secs=()
suite_start=$(date +%s)

stage() {
	local name=$1
	shift
	local start end
	start=$(date +%s)
	printf '\n=== stage %s: %s\n' "$name" "$*"
	if ! "$@"; then
		end=$(date +%s)
		printf '\n=== stage %s FAILED after %ds\n' "$name" $((end - start))
		summary
		exit 1
	fi
	end=$(date +%s)
	names+=("$name")
	secs+=($((end - start)))
	printf '=== stage %s passed in %ds\n' "$name" $((end - start))
}

summary() {
	printf '\n%-14s %8s\n' stage seconds
	local i
	for i in "${!names[@]}"; do
		printf '%-14s %8d\n' "${names[$i]}" "${secs[$i]}"
	done
	printf '%-14s %8d\n' total $(($(date +%s) - suite_start))
}

stage lint make --no-print-directory lint
stage build make --no-print-directory build
# Kubernetes and etcd for test/apiserver and the lab: minutes cold, a second warm.
stage k8s-bins scripts/k8s-bins.sh
stage addon-images scripts/addon-images.sh
# The real cosign v2.6.5, to prove signatures interoperate: minutes cold, cached after.
stage cosign scripts/cosign.sh
stage go-test go test -timeout 20m ./...
# The lab's end-to-end tests (test/e2e, docs/lab.md): they bring the lab up
# (about 1 min with cached images, ~8 min cold) and leave it up for the next run.
stage e2e go test -tags e2e -timeout 30m ./test/e2e/
# The demo (test/demo, README): make demo's steps with two headless Chromium
# sessions on the whiteboard; its drill freezes lab nodes, so it runs alone,
# after the e2e stage (3.5-4 min on a lab that is up; its other tests run in go-test).
stage demo go test -tags e2e -timeout 30m -run '^TestDemo$' ./test/demo/
summary
