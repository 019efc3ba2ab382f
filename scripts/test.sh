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

# The lab's node image (debootstrap: downloads and unpacking more than CPU,
# about 7 minutes cold, nothing warm) builds in the background while the
# CPU-bound stages run; the stage node-image before e2e waits for it.
node_image_log=$(mktemp -t tsys-ci-node-image.XXXXXX)
# shellcheck disable=SC2016 # the inner bash expands them, on purpose
setsid bash -c 'start=$(date +%s); go run ./test/lab/cmd/lab image && echo "node image ready after $(($(date +%s) - start))s in the background"' >"$node_image_log" 2>&1 &
node_image_pid=$!
trap 'kill -- -$node_image_pid 2>/dev/null || true; rm -f "$node_image_log"' EXIT
wait_node_image() {
	local rc=0
	wait "$node_image_pid" || rc=$?
	cat "$node_image_log"
	return "$rc"
}

stage lint make --no-print-directory lint
stage build make --no-print-directory build
# Kubernetes and etcd for test/apiserver and the lab: minutes cold, a second warm.
stage k8s-bins scripts/k8s-bins.sh
stage addon-images scripts/addon-images.sh
# The real cosign v2.6.5, to prove signatures interoperate: minutes cold, cached after.
stage cosign scripts/cosign.sh
stage go-test go test -timeout 20m ./...
stage node-image wait_node_image
# The lab's end-to-end tests (test/e2e, docs/lab.md): they bring the lab up
# (about 1 min with cached images, ~8 min cold) and leave it up for the next run.
stage e2e go test -tags e2e -timeout 45m ./test/e2e/
# The demo (test/demo, README): make demo's steps with two headless Chromium
# sessions on the whiteboard; its drill freezes lab nodes, so it runs alone,
# after the e2e stage (3.5-4 min on a lab that is up; its other tests run in go-test).
stage demo go test -tags e2e -timeout 30m -run '^TestDemo$' ./test/demo/
summary
