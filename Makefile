# tsys-ci: the two commands that matter are `make demo` and `make test`.
# Every target that needs outside programs runs scripts/deps.sh first; it is
# idempotent and quick when everything is already in place.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/tsys-ci

.PHONY: all build deps test test-unit lint demo demo-down lab-up lab-down lab-status clean

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tsys-ci

# The whole suite, stage by stage, each stage timed (scripts/test.sh).
test: deps
	@scripts/test.sh

# Only the Go tests that need nothing outside this repository.
test-unit:
	$(GO) test ./...

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

demo: deps
	@echo "make demo: the whiteboard demo is not built yet (issue 8); nothing was run." >&2
	@exit 1

demo-down:
	@echo "make demo-down: nothing to remove yet (issue 8)."

# The lab: a real Kubernetes 1.34 cluster of six node containers (docs/lab.md).
lab-up: deps
	@$(GO) run ./test/lab/cmd/lab up

lab-down:
	@$(GO) run ./test/lab/cmd/lab down

lab-status:
	@$(GO) run ./test/lab/cmd/lab status

# The lab's add-on images (CoreDNS, MetalLB, local-path-provisioner, registry), cached.
.PHONY: addon-images
addon-images: deps
	@scripts/addon-images.sh

clean:
	rm -rf bin

# The real cosign CLI the signature interop tests run (cached under ~/.cache/tsys-ci/cosign/).
.PHONY: cosign
cosign:
	@scripts/cosign.sh
