# Charts: Helm v4 (built from its Go module by hack/tools/install.sh) for the
# lint/template tests in internal/charts.
.PHONY: charts-tools charts-lint

TEST_PREREQS += charts-tools

## charts-tools: build the pinned helm binary once per machine (cached by install.sh).
charts-tools:
	@hack/tools/install.sh helm >/dev/null

## charts-lint: helm lint --strict every chart with each plan's values (same as the Go tests).
charts-lint: charts-tools
	$(GO) test -count=1 -run 'TestLint' ./internal/charts/
