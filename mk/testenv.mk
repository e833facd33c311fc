# Test environment (internal/testenv, cmd/storefleet-testenv): the real control
# plane and Flux controllers as local processes. See README.md "Test environment".

TESTENV_TOOLS := etcd kubernetes source-controller kustomize-controller helm-controller helm flux
TESTENV_DIR ?= $(CURDIR)/.data/testenv

.PHONY: testenv testenv-down testenv-status testenv-tools testenv-deps bench-fluxshards

## testenv-tools: build the pinned control-plane and Flux binaries once per machine
## (~22 min cold on 2 cores; cached in ~/.cache/storefleet/bin).
testenv-tools:
	@for t in $(TESTENV_TOOLS); do hack/tools/install.sh $$t >/dev/null || exit 1; done

## testenv: start the environment in the background; prints `export KUBECONFIG=...`.
testenv: testenv-tools
	$(GO) build -o $(BIN)/storefleet-testenv ./cmd/storefleet-testenv
	$(BIN)/storefleet-testenv up --dir $(TESTENV_DIR)

## testenv-status: is it running, and where.
testenv-status:
	$(GO) build -o $(BIN)/storefleet-testenv ./cmd/storefleet-testenv
	$(BIN)/storefleet-testenv status --dir $(TESTENV_DIR)

## testenv-down: stop it; no process is left behind.
testenv-down:
	$(GO) build -o $(BIN)/storefleet-testenv ./cmd/storefleet-testenv
	$(BIN)/storefleet-testenv down --dir $(TESTENV_DIR)

## testenv-deps: git (git-http-backend serves the fleet repository) on a fresh machine.
testenv-deps:
	@command -v git >/dev/null && [ -x "$$(git --exec-path)/git-http-backend" ] || \
	  { apt-get update && apt-get install -y --no-install-recommends git; }

## bench-fluxshards: a store burst with one set of Flux controllers against two controller
## shards, alternated in one run (docs/benchmarks.md, "Flux controller sharding"; ~3 min).
bench-fluxshards: testenv-tools
	$(GO) test -run '^$$' -bench FluxShardsBurst -benchtime 1x -count 1 -timeout 30m ./internal/testenv/

TEST_PREREQS += testenv-tools
DEPS_TARGETS += testenv-deps
