# The race detector over every package whose tests need no cluster, as a step of
# `make test`; and the API decoder's fuzz run. -race needs cgo, so a C compiler.
.PHONY: test-race race-deps fuzz-api

DEPS_TARGETS += race-deps
TEST_PREREQS += test-race

race-deps:
	@command -v gcc >/dev/null || { apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev; }

# Derived, so a new package is raced without editing this file: every package except
# those whose code or tests import internal/testenv (they start the control plane).
RACE_LIST = $(GO) list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | \
	awk '!/\/internal\/testenv( |$$)/ {print $$1}'

## test-race: go test -race over the packages that need no cluster.
test-race:
	@pkgs=$$($(RACE_LIST)) && [ -n "$$pkgs" ] && \
	  CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$pkgs

## fuzz-api: FuzzDecode for FUZZ_API_EXECS executions (default 10^6); crashers land in
## internal/api/testdata/fuzz/FuzzDecode. Minimisation is capped: a new input is kept
## as found rather than spending a minute shrinking each.
FUZZ_API_EXECS ?= 1000000x
fuzz-api:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZ_API_EXECS) -fuzzminimizetime 100x -parallel 1 -timeout 0 ./internal/api/
