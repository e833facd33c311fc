# The dashboard's browser test drives Debian's chromium headless (internal/dashboard,
# chromedp). The page itself needs no JavaScript toolchain: its assets are plain
# files embedded in the binary.
.PHONY: dashboard-deps dashboard-screenshots

DEPS_TARGETS += dashboard-deps

## dashboard-deps: install chromium for the browser test (apt; already there: nothing).
dashboard-deps:
	@command -v chromium >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

## dashboard-screenshots: run the browser test and keep its screenshots in docs/ (README shows them).
dashboard-screenshots:
	DASHBOARD_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestBrowser$$' ./internal/dashboard/
