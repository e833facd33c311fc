# API area: `make run` starts the API on 127.0.0.1:8080 with the embedded fleet repository
# (.data/fleet.git, seeded from fleet/ on first start). Flags and env: bin/gitops-api serve --help.
.PHONY: run bench-api

RUN_FLAGS ?=

run: build
	$(BIN)/gitops-api serve $(RUN_FLAGS)

## bench-api: only the HTTP API benchmark (make bench runs it with every other one).
bench-api:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./internal/api/
