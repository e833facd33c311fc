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

.PHONY: bench-reads
## bench-reads: the read path at 10,000 stores and 100,000 commits — restart, GET right after it and warm, a
## store's history — against the folder read and git log in the same run (make bench runs it too). Its fixture
## is made once (git fast-import, then a first clone that builds the history index: ~40 minutes on the 2 shared
## cores) and kept under ~/.cache/storefleet/fixtures. Figures: docs/benchmarks.md, "Reads at scale".
bench-reads:
	$(GO) test -run '^$$' -bench BenchmarkReads -benchtime 1x -count 1 -timeout 120m ./internal/fleet/
