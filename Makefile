# Storefleet. The two commands a new machine needs: `make run` and `make test`.
# Area-specific targets live in mk/*.mk and hook into TEST_PREREQS and DEPS_TARGETS.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go
BIN := bin
TEST_PREREQS :=
DEPS_TARGETS :=
TEST_TIMEOUT ?= 60m

.DEFAULT_GOAL := build
include $(sort $(wildcard mk/*.mk))

.PHONY: build test test-go bench lint deps tools

# -buildvcs=auto: `gitops-api version` reports the commit even where GOFLAGS turns VCS stamping off.
build:
	$(GO) build -buildvcs=auto -o $(BIN)/gitops-api ./cmd/gitops-api

## deps: install what the tests need on a fresh machine (CI calls this first).
deps: $(DEPS_TARGETS)

## test: the one test command (CI runs it through .ci/run). It installs what is
## missing first (`deps`, a no-op where everything is there), so a fresh machine
## needs nothing else.
test: lint deps $(TEST_PREREQS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## bench: every benchmark; figures go to docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 180m ./...

## lint: go vet and gofmt.
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
