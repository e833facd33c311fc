package browsertest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/dashboard/browsertest"
)

const page = `<!doctype html><html lang="en"><title>t</title>
<main><h1>Form</h1>
<label for="who">Your name</label><input id="who" type="text" aria-describedby="who-err">
<p id="who-err" hidden>wrong</p>
<label>Secret <input name="secret" type="password"></label>
<button type="button" onclick="document.getElementById('out').textContent = 'Hello, ' + document.getElementById('who').value; document.getElementById('who-err').hidden = false">Greet</button>
<p role="status" id="out"></p>
<a href="#/next" aria-label="Pull request #7 (open)">PR #7</a>
</main>`

// TestDrivers runs one scenario in each browser: what the dashboard's tests rely on
// of a driver (find by role and name, type, click, read, wait, evaluate, a picture).
func TestDrivers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	defer srv.Close()
	for _, b := range browsertest.Browsers {
		t.Run(b, func(t *testing.T) {
			p := browsertest.Start(t, b, time.Minute)
			p.Open(srv.URL + "/")
			p.Wait("the heading", "heading", "Form", nil)
			field := p.Wait("the name field", "textbox", "Your name", nil)
			p.TypeInto(field, "Ada")
			if got := p.Description(field); got != "" {
				t.Fatalf("a hidden description is read: %q", got)
			}
			p.TypeInto(p.WaitLabel("the password field", "Secret"), "s3")
			if got := p.Eval(`document.querySelector('[name=secret]').value`); got != "s3" {
				t.Fatalf("typed into the password field: %q", got)
			}
			p.Click(p.Wait("the button", "button", "Greet", nil))
			p.Wait("the greeting", "status", "", func(el browsertest.Element) bool {
				p.Shown = p.Text(el)
				return p.Shown == "Hello, Ada"
			})
			if got := p.Description(field); got != "wrong" {
				t.Fatalf("description %q, want wrong", got)
			}
			link := p.Wait("the link", "link", "Pull request #7 (open)", nil)
			if got := p.Attr(link, "href"); got != "#/next" {
				t.Fatalf("href %q", got)
			}
			if got := p.Call(field, `function(a, b) { return this.value + a + b; }`, "-", 2); got != "Ada-2" {
				t.Fatalf("call with arguments: %q", got)
			}
			if got := p.Eval(`new Promise((r) => setTimeout(() => r(document.title), 1))`); got != "t" {
				t.Fatalf("eval: %q", got)
			}
			if els := p.Find("button", "No such"); len(els) != 0 {
				t.Fatalf("found %d buttons named No such", len(els))
			}
			p.Open(srv.URL + "/#/next")
			if got := p.Eval(`location.hash`); got != "#/next" {
				t.Fatalf("hash after open: %q", got)
			}
			png, err := p.D.Screenshot(p.Context())
			if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
				t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
			}
		})
	}
}
