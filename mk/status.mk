# Status area: `make dev` is the full local platform — the test environment's control
# plane and Flux (make testenv) with gitops-api pointed at its fleet repository and
# cluster, so stores go from a request to ready (README "Watching stores become ready").
.PHONY: dev bench-status bench-async

DEV_LISTEN ?= 127.0.0.1:8080

## dev: serve the API against the test environment, starting it if it is not running.
## Ctrl-C stops the API, then the environment if dev started it (one that was
## already running, e.g. from make testenv, stays up).
# storefleet-testenv dev, not a trap in this recipe, runs gitops-api and owns the
# teardown: it knows whether it started the environment, stops gitops-api before it,
# and ties both to itself with a parent-death signal, so even a dev that is killed
# leaves nothing running. It fills in {fleetURL} and {kubeconfig} once the
# environment is up (its ports are picked at start). exec: no shell in between.
dev: testenv-tools build
	$(GO) build -o $(BIN)/storefleet-testenv ./cmd/storefleet-testenv
	@exec $(BIN)/storefleet-testenv dev --dir $(TESTENV_DIR) -- \
	  $(BIN)/gitops-api serve --listen $(DEV_LISTEN) --data-dir $(TESTENV_DIR)/gitops-api \
	    --fleet-url '{fleetURL}' --kubeconfig '{kubeconfig}' --chart-repository storefleet '{nodeFlags}' $(RUN_FLAGS)

## bench-status: only the status benchmarks (make bench runs them with every other one).
bench-status:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 180m ./internal/status/...

## bench-async: creates from 100 clients with the test environment's cluster connected against the same API
## with no cluster, same run (make bench runs it too). Figures: docs/benchmarks.md, "Answering at the durable point".
bench-async:
	$(GO) test -run '^$$' -bench CreateBurst -count 1 -timeout 60m ./internal/status/e2e/
