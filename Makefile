# tsys-ci: the two commands that matter are `make demo` and `make test`.
# Every target that needs outside programs runs scripts/deps.sh first; it is
# idempotent and quick when everything is already in place.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/tsys-ci

# staticcheck for make lint, from the Go module proxy (cached by the go command).
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all help build deps test test-unit bench lint demo demo-down lab-up lab-down lab-status clean

# Builds bin/tsys-ci (the default target).
all: build

# Lists the targets with the first line of the comment above each.
help:
	@awk '/^# / { if (!doc) doc = substr($$0, 3); next } /^\.PHONY|^[A-Z_]+ *[?:]?=/ { next } \
		/^[a-z][a-z-]*:/ { t = $$1; sub(/:.*/, "", t); if (doc) printf "  %-17s %s\n", t, doc } \
		{ doc = "" }' $(firstword $(MAKEFILE_LIST))

# Installs the Debian packages and starts the daemons the tests and the lab need.
deps:
	@scripts/deps.sh

# Builds bin/tsys-ci.
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tsys-ci

# The whole suite, stage by stage, each stage timed (scripts/test.sh).
test: deps
	@scripts/test.sh

# The quick run: the Go tests that need nothing outside this repository.
# Under -short every test that needs an outside program (testenv.LookPath,
# testenv.Missing) or a real API server (test/apiserver) skips.
test-unit:
	$(GO) test -short ./...

# Measurements, not tests (numbers reported, nothing asserted on them):
# pod creations through a real API server with and without serve's image
# admission (p50/p99 per creation; docs/supply-chain.md); a weight change
# promote writes until the real HAProxy shows it, with 50 apps synced by
# version (p50/p99/max; docs/edge.md).
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 200x ./pipeline/serve/clustertest/
	$(GO) test -run '^$$' -bench . -benchtime 100x ./platform/edge/clustertest/

# gofmt, go vet, staticcheck (staticcheck.conf) and shellcheck on every shell script.
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	shellcheck $$(git ls-files '*.sh')

# The whiteboard demo (issue 8, test/demo): lab up, build/push --sign,
# promote, a new version, a broken one, a node failure, the numbers.
# DEMO_SKIP_DRILL=1 leaves out the node failure.
demo: deps
	@$(GO) run ./test/demo/cmd/demo up

# Removes the demo's apps and .lab/demo; the lab stays (make lab-down).
demo-down:
	@$(GO) run ./test/demo/cmd/demo down

# The lab: a real Kubernetes 1.34 cluster of six node containers (docs/lab.md).
lab-up: deps
	@$(GO) run ./test/lab/cmd/lab up

# Stops and removes the lab's node containers.
lab-down:
	@$(GO) run ./test/lab/cmd/lab down

# Shows whether the lab is up and how its nodes are.
lab-status:
	@$(GO) run ./test/lab/cmd/lab status

# The lab's add-on images (CoreDNS, MetalLB, local-path-provisioner, registry), cached.
.PHONY: addon-images
addon-images: deps
	@scripts/addon-images.sh

# Removes bin/.
clean:
	rm -rf bin

# The real cosign CLI the signature interop tests run (cached under ~/.cache/tsys-ci/cosign/).
.PHONY: cosign
cosign:
	@scripts/cosign.sh

# The demo whiteboard's image (test/whiteboard, issue 8): a static binary in a
# scratch image, built by tsys-ci itself. Writes bin/whiteboard/image (OCI
# layout) and bin/whiteboard/build.json for `tsys-ci push --from`.
WHITEBOARD_VERSION ?= $(VERSION)
.PHONY: whiteboard-image
whiteboard-image: build
	@rm -rf bin/whiteboard && mkdir -p bin/whiteboard/context
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -X main.version=$(WHITEBOARD_VERSION)' \
		-o bin/whiteboard/context/whiteboard ./test/whiteboard/cmd/whiteboard
	$(BIN) build --context bin/whiteboard/context --base scratch --workdir /app \
		--entrypoint /app/whiteboard --env WHITEBOARD_DATA=/data --env WHITEBOARD_ADDR=:8080 --port 8080 \
		--job whiteboard --out bin/whiteboard/image --result bin/whiteboard/build.json
