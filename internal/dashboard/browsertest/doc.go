// Package browsertest drives a real browser for the dashboard's tests: Debian's
// chromium through the DevTools protocol (chromedp), and Debian's firefox-esr through
// WebDriver BiDi, which this package speaks itself over one WebSocket (chromedp
// cannot drive Firefox, and geckodriver is not packaged for Debian 12).
//
// Both sit behind Driver, so one scenario runs in both browsers. A test finds
// elements as a person does, by role and accessible name (the label of a field, the
// text of a button), never by CSS class; Page adds the waiting and the failing.
// A browser that is not installed fails the test, naming the package to install:
// a browser test that skipped would pass without a browser.
package browsertest
