#!/usr/bin/env bash
# addon-images.sh: build the lab's cluster add-ons (CoreDNS, MetalLB controller
# and speaker, local-path-provisioner, the distribution registry) from the Go
# module proxy and package each as an image FROM scratch, saved with
# `docker save` for `ctr -n k8s.io images import` on the nodes.
#
# Each component is built from its own Go module under test/addons/build/<module>/
# (their Kubernetes client libraries are years apart and cannot share one go.mod).
# Results are cached under ~/.cache/tsys-ci/addons/<name>-<version>-<hash>/, the
# hash taken over everything that goes into the image (go.mod, go.sum, local Go
# sources, Go version, build flags, Dockerfile), so a second run rebuilds nothing
# and a changed input rebuilds only that component.
#
# Each cache directory holds image.tar, the static binaries under bin/ (the
# registry's is run directly by tests outside the lab), build.log, recipe.txt
# and, for metallb-controller, MetalLB's CRDs of the same version under crds/.
#
# Output: one line per image on stdout, "IMAGE<TAB>TARBALL"; progress on stderr.
# Usage: scripts/addon-images.sh [--list] [NAME...]
#   --list   print the lines for what is already built and fail if anything is
#            missing, without building
#   NAME     build only these components (default: all)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${TSYS_CI_CACHE:-$HOME/.cache/tsys-ci}/addons
registry_prefix=lab.local/tsys

log() { printf '[addon-images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'addon-images.sh: %s\n' "$*" >&2; exit 1; }

# Bump when the layout of a cache directory changes: every component rebuilds.
layout=2

# name|module dir|version|package:binary ...|ldflags
# A package written //DIR is in the main module (stdlib-only helpers of ours).
components=(
	"coredns|coredns|v1.15.0|github.com/coredns/coredns:coredns|"
	"metallb-controller|metallb|v0.13.12|go.universe.tf/metallb/controller:controller|"
	"metallb-speaker|metallb|v0.13.12|go.universe.tf/metallb/speaker:speaker|"
	"local-path-provisioner|localpath|v0.0.30|github.com/rancher/local-path-provisioner:local-path-provisioner //test/addons/localpathhelper:local-path-helper|-X main.VERSION=v0.0.30"
	"registry|registry|v3.1.2|github.com/distribution/distribution/v3/cmd/registry:registry|-X github.com/distribution/distribution/v3/version.version=v3.1.2"
)

list_only=0
want=()
for arg in "$@"; do
	case "$arg" in
	--list) list_only=1 ;;
	-*) die "unknown flag $arg (known: --list)" ;;
	*) want+=("$arg") ;;
	esac
done

wanted() {
	((${#want[@]} == 0)) && return 0
	local w
	for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done
	return 1
}

# dockerfile NAME BINARIES...: the image recipe. No base image can be pulled
# here, and none is needed: every binary is static (CGO_ENABLED=0) and none of
# them talks TLS to a public CA in the lab, so no CA bundle or passwd goes in.
dockerfile() {
	local name=$1
	shift
	echo "FROM scratch"
	local b
	for b in "$@"; do echo "COPY $b /$b"; done
	echo "LABEL org.opencontainers.image.title=$name io.tsys-ci.built-by=scripts/addon-images.sh"
	echo "ENTRYPOINT [\"/$1\"]"
}

build_one() {
	local spec=$1
	local name mod version pkgs ldflags
	IFS='|' read -r name mod version pkgs ldflags <<<"$spec"
	local moddir=$root/test/addons/build/$mod
	[[ -f $moddir/go.mod ]] || die "$moddir/go.mod is missing"

	local bins=() p
	for p in $pkgs; do bins+=("${p##*:}"); done
	local recipe
	recipe=$(
		printf 'layout=%s name=%s version=%s pkgs=%s ldflags=%s goarch=%s\n' "$layout" "$name" "$version" "$pkgs" "$ldflags" "$(go env GOARCH)"
		go version
		dockerfile "$name" "${bins[@]}"
	)
	local hash
	hash=$(
		{
			echo "$recipe"
			(cd "$moddir" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs sha256sum)
			for p in $pkgs; do
				[[ $p == //* ]] || continue
				p=${p%%:*}
				(cd "$root" && find "./${p#//}" -maxdepth 1 -type f -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs sha256sum)
			done
		} | sha256sum | cut -c1-16
	)
	local dir=$cache/$name-$version-$hash
	local image=$registry_prefix/$name:$version
	local tar=$dir/image.tar

	if [[ -f $tar ]]; then
		((list_only)) || log "$name: cached ($dir)"
		printf '%s\t%s\n' "$image" "$tar"
		return 0
	fi
	((list_only)) && die "$name is not built yet (expected $tar); run scripts/addon-images.sh"

	local tmp=$cache/.tmp-$name-$$
	rm -rf "$tmp"
	mkdir -p "$tmp/ctx"
	local logf=$tmp/build.log
	local start=$SECONDS
	for p in $pkgs; do
		local pkg=${p%%:*} bin=${p##*:} in=$moddir
		if [[ $pkg == //* ]]; then
			in=$root
			pkg=./${pkg#//}
		fi
		log "$name: go build $pkg (log: $dir/build.log)"
		if ! (cd "$in" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp/ctx/$bin" "$pkg") >>"$logf" 2>&1; then
			tail -20 "$logf" >&2
			die "$name: go build of $pkg failed; full log in $logf"
		fi
	done
	dockerfile "$name" "${bins[@]}" >"$tmp/ctx/Dockerfile"
	log "$name: docker build $image"
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$image" "$tmp/ctx" >>"$logf" 2>&1; then
		tail -20 "$logf" >&2
		die "$name: docker build failed; full log in $logf"
	fi
	docker save -o "$tmp/image.tar" "$image" >>"$logf" 2>&1 || die "$name: docker save of $image failed; log in $logf"
	# The tarball is the product; the engine's copy is only a by-product.
	docker rmi "$image" >>"$logf" 2>&1 || true
	if [[ $name == metallb-controller ]]; then
		# The CRDs of exactly the version built, for addons.Install to apply.
		local mdir
		mdir=$(cd "$moddir" && go list -m -f '{{.Dir}}' go.universe.tf/metallb) || die "$name: cannot locate the go.universe.tf/metallb module"
		mkdir -p "$tmp/crds"
		cp "$mdir"/config/crd/bases/*.yaml "$tmp/crds/"
		chmod 644 "$tmp"/crds/*.yaml
	fi
	echo "$recipe" >"$tmp/recipe.txt"
	echo "$image" >"$tmp/image.ref"
	rm "$tmp/ctx/Dockerfile"
	mv "$tmp/ctx" "$tmp/bin"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	log "$name: built in $((SECONDS - start))s, $(du -h "$tar" | cut -f1) ($tar)"
	printf '%s\t%s\n' "$image" "$tar"
}

command -v go >/dev/null || die "go is not on PATH"
((list_only)) || docker version >/dev/null 2>&1 || die "the Docker engine does not answer; run scripts/deps.sh"
mkdir -p "$cache"
# One build at a time per cache: two concurrent runs would race on the same dirs.
exec 9>"$cache/.lock"
flock 9

found=0
for spec in "${components[@]}"; do
	name=${spec%%|*}
	wanted "$name" || continue
	found=$((found + 1))
	build_one "$spec"
done
((found == ${#want[@]} || ${#want[@]} == 0)) || die "unknown component in: ${want[*]} (known: coredns metallb-controller metallb-speaker local-path-provisioner registry)"
