# API area: `make run` starts the API on 127.0.0.1:8080 with the embedded fleet repository
# (.data/fleet.git, seeded from fleet/ on first start). Flags and env: bin/gitops-api serve --help.
.PHONY: run bench-api bench-auth bench-tput

RUN_FLAGS ?=

run: build
	$(BIN)/gitops-api serve $(RUN_FLAGS)

## bench-api: only the HTTP API benchmark (make bench runs it with every other one).
bench-api:
	$(GO) test -run '^$$' -bench HTTPCreate -benchtime 200x -count 1 -timeout 60m ./internal/api/

## bench-auth: what authentication adds to a create (API token and OIDC JWT against none, same run) and the
## authentication step alone; make bench runs them too. Figures: docs/benchmarks.md, "Authentication".
bench-auth:
	$(GO) test -run '^$$' -bench 'AuthCreate|Authenticate' -benchtime 200x -count 1 -timeout 30m ./internal/api/

# The API's tests run a real Git server (git http-backend, shipped in Debian's git package).
.PHONY: api-deps
DEPS_TARGETS += api-deps
api-deps:
	@if [ -x "$$(git --exec-path 2>/dev/null)/git-http-backend" ]; then echo "git http-backend: present"; \
	  else apt-get update && apt-get install -y --no-install-recommends git; fi

## bench-tput: creates/s through the API (API token, 100 clients, 10,000 stores) on the embedded default and
## over git http-backend, against the writer alone and the server's receive-pack floor in the same run
## (make bench runs it too). Figures: docs/benchmarks.md, "Throughput through the API".
bench-tput:
	$(GO) test -run '^$$' -bench CreateThroughput -benchtime 2000x -count 1 -timeout 60m ./internal/api/
