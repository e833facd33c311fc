package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Browsers are the browsers the dashboard supports, by the names Start takes; a
// scenario runs once per name (subtests named so).
var Browsers = []string{"chromium", "firefox"}

// Element is a node of the page as a driver knows it (a DevTools backend node id, a
// BiDi shared id). It is valid until the document is replaced.
type Element struct {
	ref string
}

// Driver is what a test needs of a browser: one page, opened at a URL, its elements
// found by role and accessible name, JavaScript run on them, keys typed, a picture.
type Driver interface {
	// Open navigates the page and waits for the document to load (a change of the
	// fragment only is a navigation too, without a reload).
	Open(ctx context.Context, url string) error
	// Find returns the elements exposed to assistive technology with this ARIA role
	// and accessible name (any name when name is empty), in document order.
	Find(ctx context.Context, role, name string) ([]Element, error)
	// Call runs fn, the source of a JavaScript function, with el as this and args
	// (JSON values) as its arguments, and returns its result as a string ("" for
	// undefined or null). A returned promise is awaited.
	Call(ctx context.Context, el Element, fn string, args ...any) (string, error)
	// Eval evaluates a JavaScript expression in the page, awaiting a promise, and
	// returns its result as a string.
	Eval(ctx context.Context, expr string) (string, error)
	// Type sends text as key presses to the focused element.
	Type(ctx context.Context, text string) error
	// Screenshot is a PNG of the viewport.
	Screenshot(ctx context.Context) ([]byte, error)
}

// Width and Height are the viewport both browsers get, so that screenshots of either
// frame the same page.
const (
	Width  = 1280
	Height = 900
)

// Start starts the named browser (one of Browsers) headless for the test's life and
// returns its page, bounded by timeout: a page that never shows what is awaited
// fails the test instead of hanging it. Nothing is asserted about durations.
func Start(t testing.TB, browser string, timeout time.Duration) *Page {
	t.Helper()
	var d Driver
	switch browser {
	case "chromium":
		d = startChromium(t)
	case "firefox":
		d = startFirefox(t)
	default:
		t.Fatalf("browsertest: no browser %q (known: %v)", browser, Browsers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &Page{t: t, ctx: ctx, D: d, Browser: browser}
}

// Page is a started browser's page with the test's failure handling: each method
// fails the test on an error, and Wait polls until what is awaited is shown.
type Page struct {
	t   testing.TB
	ctx context.Context
	D   Driver
	// Browser is the name Start was given.
	Browser string
	// Shown is what a Wait's condition last saw (set by the condition), for the
	// failure message when it is never satisfied.
	Shown string
	// OnFail adds to a Wait's failure message (where the servers' logs are).
	OnFail string
}

// Context is the page's context: its deadline bounds the scenario.
func (p *Page) Context() context.Context { return p.ctx }

// Open navigates the page to url.
func (p *Page) Open(url string) {
	p.t.Helper()
	if err := p.D.Open(p.ctx, url); err != nil {
		p.t.Fatalf("%s: open %s: %v", p.Browser, url, err)
	}
}

// Find returns the elements with the role and accessible name shown now.
func (p *Page) Find(role, name string) []Element {
	p.t.Helper()
	els, err := p.D.Find(p.ctx, role, name)
	if err != nil {
		p.t.Fatalf("%s: find %s %q: %v", p.Browser, role, name, err)
	}
	return els
}

// Wait polls until an element with the role and accessible name is shown that ok
// accepts (nil: any), and returns it; what names it in the failure.
func (p *Page) Wait(what, role, name string, ok func(Element) bool) Element {
	p.t.Helper()
	var last string
	for {
		// Each look has its own bound: Firefox can drop a command sent while a
		// navigation to another origin swaps the page's process, and the next look
		// then finds the new page.
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		els, err := p.D.Find(ctx, role, name)
		cancel()
		if err != nil {
			last = err.Error()
		}
		for _, el := range els {
			if ok == nil || ok(el) {
				return el
			}
			last = fmt.Sprintf("%s %q seen, not as wanted", role, name)
		}
		if !p.sleep() {
			p.t.Fatalf("%s: %s: never seen (last: %s; shown: %q)%s", p.Browser, what, last, p.Shown, p.OnFail)
		}
	}
}

// WaitLabel waits for the form field labelled label, whatever role the browser
// gives it (Firefox exposes a password field with no ARIA role, Chromium as a
// textbox).
func (p *Page) WaitLabel(what, label string) Element {
	p.t.Helper()
	return p.Wait(what, "", label, func(el Element) bool {
		return p.Call(el, `function() { return this.nodeType === 1 && this.matches('input, select, textarea'); }`) == "true"
	})
}

// Until polls until cond holds; what names it in the failure.
func (p *Page) Until(what string, cond func() bool) {
	p.t.Helper()
	for !cond() {
		if !p.sleep() {
			p.t.Fatalf("%s: %s: never happened (shown: %q)%s", p.Browser, what, p.Shown, p.OnFail)
		}
	}
}

// sleep waits before the next poll; false once the scenario's time is up.
func (p *Page) sleep() bool {
	select {
	case <-p.ctx.Done():
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

// Call runs the JavaScript function fn with el as this (see Driver.Call).
func (p *Page) Call(el Element, fn string, args ...any) string {
	p.t.Helper()
	out, err := p.D.Call(p.ctx, el, fn, args...)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.Browser, fn, err)
	}
	return out
}

// Eval evaluates a JavaScript expression in the page (see Driver.Eval).
func (p *Page) Eval(expr string) string {
	p.t.Helper()
	out, err := p.D.Eval(p.ctx, expr)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.Browser, expr, err)
	}
	return out
}

// Click focuses the element and clicks it, as Enter on a focused control does.
func (p *Page) Click(el Element) {
	p.t.Helper()
	p.Call(el, `function() { this.focus(); this.click(); }`)
}

// TypeInto focuses the field, selects what it holds and types text over it as a
// keyboard does (the page sees key and input events).
func (p *Page) TypeInto(el Element, text string) {
	p.t.Helper()
	p.Call(el, `function() { this.focus(); this.select && this.select(); }`)
	if err := p.D.Type(p.ctx, text); err != nil {
		p.t.Fatalf("%s: typing %q: %v", p.Browser, text, err)
	}
}

// Choose picks the option of a select by its value, with the events a person's
// choice fires.
func (p *Page) Choose(el Element, option string) {
	p.t.Helper()
	got := p.Call(el, `function(v) { this.focus(); this.value = v; this.dispatchEvent(new Event('input', {bubbles: true}));
		this.dispatchEvent(new Event('change', {bubbles: true})); return this.value; }`, option)
	if got != option {
		p.t.Fatalf("%s: the select has no option %q", p.Browser, option)
	}
}

// Text is the element's visible text (innerText: what is rendered, laid out as
// lines and, in a table row, tab-separated cells), trimmed.
func (p *Page) Text(el Element) string {
	p.t.Helper()
	return strings.TrimSpace(p.Call(el, `function() { return this.innerText; }`))
}

// Description is the text of the elements that describe el (aria-describedby) and
// are shown: what a screen reader reads after the field's name, such as its error.
func (p *Page) Description(el Element) string {
	p.t.Helper()
	return p.Call(el, `function() {
		return (this.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean)
			.map((id) => document.getElementById(id)).filter((d) => d && !d.hidden)
			.map((d) => d.textContent.trim()).join(' '); }`)
}

// Attr is the element's attribute (empty when missing).
func (p *Page) Attr(el Element, name string) string {
	p.t.Helper()
	return p.Call(el, `function(n) { return this.getAttribute(n); }`, name)
}

// Screenshot saves a PNG of the viewport as file. Chromium's go to
// $DASHBOARD_SCREENSHOTS when set (the README's pictures: make
// dashboard-screenshots); the rest, and all when it is not set, to a temporary
// directory: taking them is still part of the scenario.
func (p *Page) Screenshot(file string) {
	p.t.Helper()
	dir := os.Getenv("DASHBOARD_SCREENSHOTS")
	if dir == "" || p.Browser != "chromium" {
		dir = p.t.TempDir()
	}
	buf, err := p.D.Screenshot(p.ctx)
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.Browser, err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
