# Fleet repository writer (internal/gitrepo). Its tests and benchmarks need the git
# binary (git http-backend, fast-import, fsck); `make bench` runs the benchmarks with
# every other package's, bench-gitrepo runs only these.
DEPS_TARGETS += gitrepo-deps

.PHONY: gitrepo-deps bench-gitrepo

gitrepo-deps:
	@command -v git >/dev/null || { apt-get update && apt-get install -y --no-install-recommends git; }

## bench-gitrepo: the fleet writer's benchmarks only (figures: docs/benchmarks.md).
bench-gitrepo:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./internal/gitrepo/
