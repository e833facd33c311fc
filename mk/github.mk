# Review by pull request (internal/github, internal/review). Its tests need only git (the
# loopback Git server, installed by the api and gitrepo areas) and the Go modules; GitHub's
# REST side is an httptest server in the tests.
.PHONY: bench-github

## bench-github: the pull-request path's own cost per create against the direct commit, same run
## (make bench runs it too). Figures: docs/benchmarks.md, "Review by pull request".
bench-github:
	$(GO) test -run '^$$' -bench ReviewedCreate -benchtime 200x -count 1 -timeout 30m ./internal/github/
