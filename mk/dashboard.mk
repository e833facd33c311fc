# The dashboard's browser tests drive Debian's chromium (chromedp) and firefox-esr
# (WebDriver BiDi, internal/dashboard/browsertest), both headless. The page itself
# needs no JavaScript toolchain: its assets are plain files embedded in the binary.
.PHONY: dashboard-deps dashboard-screenshots

DEPS_TARGETS += dashboard-deps

DASHBOARD_BROWSERS := chromium firefox-esr

## dashboard-deps: install chromium and firefox-esr for the browser tests (apt; already there: nothing).
dashboard-deps:
	@missing=""; for b in $(DASHBOARD_BROWSERS); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

## dashboard-screenshots: run the browser test and keep its screenshots (Chromium's) in docs/ (README shows them).
dashboard-screenshots:
	DASHBOARD_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestBrowser$$/^chromium$$' ./internal/dashboard/
