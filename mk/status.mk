# Status area: `make dev` is the full local platform — the test environment's control
# plane and Flux (make testenv) with gitops-api pointed at its fleet repository and
# cluster, so stores go from a request to ready (README "Watching stores become ready").
.PHONY: dev bench-status

DEV_LISTEN ?= 127.0.0.1:8080

## dev: start the test environment (if not running) and serve the API against it.
dev: testenv-tools build
	$(GO) build -o $(BIN)/storefleet-testenv ./cmd/storefleet-testenv
	@$(BIN)/storefleet-testenv status --dir $(TESTENV_DIR) 2>/dev/null | grep -q '^# up' || $(BIN)/storefleet-testenv up --dir $(TESTENV_DIR)
	@fleet=$$(sed -n 's/.*"fleetURL": *"\([^"]*\)".*/\1/p' $(TESTENV_DIR)/env.json); \
	  test -n "$$fleet" || { echo "no fleetURL in $(TESTENV_DIR)/env.json"; exit 1; }; \
	  echo "gitops-api: fleet $$fleet, cluster $(TESTENV_DIR)/kubeconfig"; \
	  $(BIN)/gitops-api serve --listen $(DEV_LISTEN) --data-dir $(TESTENV_DIR)/gitops-api \
	    --fleet-url "$$fleet" --kubeconfig $(TESTENV_DIR)/kubeconfig --chart-repository storefleet $(RUN_FLAGS)

## bench-status: only the status benchmarks (make bench runs them with every other one).
bench-status:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 180m ./internal/status/...
