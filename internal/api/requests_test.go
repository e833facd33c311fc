package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// problemField returns the one field error of a problem as "field/rule".
func problemField(t *testing.T, p map[string]any) string {
	t.Helper()
	errs, _ := p["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("want exactly one field error: %v", p)
	}
	fe := errs[0].(map[string]any)
	return fe["field"].(string) + "/" + fe["rule"].(string)
}

// A body is read as the client wrote it or refused: a key given twice (encoding/json
// keeps the last) and a key whose case differs from the field (encoding/json matches
// it anyway) are both 400s naming the key, and nothing is committed.
func TestStrictJSONKeys(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("strict")), http.StatusAccepted)
	n := e.commits()
	const good = `"engine":"woocommerce","plan":"basic","settings":{"title":"T","adminEmail":"a@example.com"}`
	cases := []struct {
		name, method, path, body, want string
	}{
		{"duplicate top-level key", "POST", "/api/v1/stores", `{"name":"dup-a","name":"dup-b",` + good + `}`, "name/duplicateKey"},
		{"duplicate nested key", "POST", "/api/v1/stores",
			`{"name":"dup-c","engine":"woocommerce","plan":"basic","settings":{"title":"A","adminEmail":"a@example.com","title":"B"}}`,
			"settings.title/duplicateKey"},
		{"duplicate with other spelling", "POST", "/api/v1/stores", `{"name":"dup-d","\u006eame":"dup-e",` + good + `}`, "name/duplicateKey"},
		{"capitalised field", "POST", "/api/v1/stores", `{"Name":"case-a",` + good + `}`, "Name/unknown"},
		{"capitalised nested field", "POST", "/api/v1/stores",
			`{"name":"case-b","engine":"woocommerce","plan":"basic","settings":{"Title":"T","adminEmail":"a@example.com"}}`,
			"settings.Title/unknown"},
		{"both spellings", "POST", "/api/v1/stores", `{"name":"case-c","NAME":"case-d",` + good + `}`, "NAME/unknown"},
		{"patch duplicate", "PATCH", "/api/v1/stores/strict", `{"plan":"standard","plan":"premium"}`, "plan/duplicateKey"},
		{"patch nested duplicate", "PATCH", "/api/v1/stores/strict", `{"settings":{"title":"A","title":"B"}}`, "settings.title/duplicateKey"},
		{"patch capitalised", "PATCH", "/api/v1/stores/strict", `{"Plan":"premium"}`, "Plan/unknown"},
		{"patch capitalised nested", "PATCH", "/api/v1/stores/strict", `{"settings":{"Title":"x"}}`, "settings.Title/unknown"},
		{"patch wrong type", "PATCH", "/api/v1/stores/strict", `{"settings":{"title":7}}`, "settings.title/type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			r := e.do(c.method, c.path, c.body, "Idempotency-Key", "strict-"+strings.ReplaceAll(c.name, " ", "-"))
			p := e.expect(r, http.StatusBadRequest)
			if got := problemField(t, p); got != c.want {
				t.Fatalf("refused naming %s, want %s: %v", got, c.want, p)
			}
			if p["type"] != "urn:storefleet:problem:malformed-body" {
				t.Fatalf("type %v", p["type"])
			}
		})
	}
	e.t = t
	if e.commits() != n {
		t.Fatal("a refused body made a commit")
	}
	got := e.expect(e.do("GET", "/api/v1/stores/strict", nil), http.StatusOK)
	if got["plan"] != "basic" || got["settings"].(map[string]any)["title"] != "Shop strict" {
		t.Fatalf("a refused patch changed the store: %v", got)
	}
}

// The Idempotency-Key fingerprint is over what the request means, not its bytes: the
// same JSON with other whitespace and key order, or the same flags spelled otherwise,
// is a retry of the same request.
func TestIdempotencyKeyIsOverTheCanonicalRequest(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	first := `{"name":"canon","engine":"woocommerce","plan":"basic","settings":{"title":"Canon","adminEmail":"a@example.com"}}`
	again := "{\n  \"settings\": {\"adminEmail\": \"a@example.com\", \"title\": \"\\u0043anon\"},\n  \"plan\": \"basic\",\n  \"engine\": \"woocommerce\",\n  \"name\": \"canon\"\n}\n"
	a := e.expect(e.do("POST", "/api/v1/stores", first, "Idempotency-Key", "canon-1"), http.StatusAccepted)
	b := e.expect(e.do("POST", "/api/v1/stores?dryRun=false", again, "Idempotency-Key", "canon-1"), http.StatusAccepted)
	if a["commit"].(map[string]any)["sha"] != b["commit"].(map[string]any)["sha"] {
		t.Fatalf("the retry was answered differently:\n%v\n%v", a, b)
	}
	patch := e.expect(e.do("PATCH", "/api/v1/stores/canon", `{"plan":"standard","settings":{"title":"C2"}}`, "Idempotency-Key", "canon-2"), http.StatusAccepted)
	patch2 := e.expect(e.do("PATCH", "/api/v1/stores/canon", `{ "settings" : { "title" : "C2" } , "plan" : "standard" }`, "Idempotency-Key", "canon-2"), http.StatusAccepted)
	if patch["commit"].(map[string]any)["sha"] != patch2["commit"].(map[string]any)["sha"] {
		t.Fatalf("the patch retry was answered differently:\n%v\n%v", patch, patch2)
	}
	del := e.expect(e.do("DELETE", "/api/v1/stores/canon?purge=false", nil, "Idempotency-Key", "canon-3"), http.StatusAccepted)
	del2 := e.expect(e.do("DELETE", "/api/v1/stores/canon", nil, "Idempotency-Key", "canon-3"), http.StatusAccepted)
	if del["commit"].(map[string]any)["sha"] != del2["commit"].(map[string]any)["sha"] {
		t.Fatalf("the delete retry was answered differently:\n%v\n%v", del, del2)
	}
	if e.commits() != n+3 {
		t.Fatalf("three requests and their retries made %d commits", e.commits()-n)
	}
	// Another request under a used key is still refused.
	p := e.expect(e.do("PATCH", "/api/v1/stores/canon", `{"plan":"premium"}`, "Idempotency-Key", "canon-2"), http.StatusUnprocessableEntity)
	if got := problemField(t, p); got != "Idempotency-Key/reused" {
		t.Fatalf("%s: %v", got, p)
	}
}

// A request refused for its input does not use up its Idempotency-Key: the client
// fixes the input and retries under the same key.
func TestIdempotencyKeyNotBoundByRefusedInput(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	bad := with(shop("bound"), "settings.currency", "euro")
	p := e.expect(e.do("POST", "/api/v1/stores", bad, "Idempotency-Key", "fix-1"), http.StatusUnprocessableEntity)
	if got := problemField(t, p); got != "settings.currency/iso4217" {
		t.Fatalf("%s: %v", got, p)
	}
	e.expect(e.do("GET", "/api/v1/requests/fix-1", nil), http.StatusNotFound)
	ok := e.expect(e.do("POST", "/api/v1/stores", shop("bound"), "Idempotency-Key", "fix-1"), http.StatusAccepted)
	if ok["requestId"] != "fix-1" {
		t.Fatalf("%v", ok)
	}
	// An update refused for a field (a plan with less storage) likewise.
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"plan":"premium"}`), http.StatusAccepted)
	p = e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"plan":"basic"}`, "Idempotency-Key", "fix-2"), http.StatusUnprocessableEntity)
	if got := problemField(t, p); got != "plan/storageShrink" {
		t.Fatalf("%s: %v", got, p)
	}
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"settings":{"title":"Fixed"}}`, "Idempotency-Key", "fix-2"), http.StatusAccepted)
	// A body that does not decode never reached the service either.
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"settings":{"colour":"red"}}`, "Idempotency-Key", "fix-3"), http.StatusBadRequest)
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"settings":{"title":"Again"}}`, "Idempotency-Key", "fix-3"), http.StatusAccepted)
	if e.commits() != n+4 {
		t.Fatalf("%d commits, want 4", e.commits()-n)
	}
	// A retry of the accepted request still gets its first outcome.
	again := e.expect(e.do("POST", "/api/v1/stores", shop("bound"), "Idempotency-Key", "fix-1"), http.StatusAccepted)
	if again["commit"].(map[string]any)["sha"] != ok["commit"].(map[string]any)["sha"] {
		t.Fatalf("retry after the fix answered differently:\n%v\n%v", ok, again)
	}
}

// A method a route does not serve is 405 with the methods it does serve in Allow;
// OPTIONS answers the same list; a path no method serves stays 404.
func TestMethodsOfARoute(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ path, allow string }{
		{"/api/v1/stores", "GET,HEAD,OPTIONS,POST"},
		{"/api/v1/stores/x", "DELETE,GET,HEAD,OPTIONS,PATCH"},
		{"/api/v1/stores/x/history", "GET,HEAD,OPTIONS"},
		{"/api/v1/requests/x", "GET,HEAD,OPTIONS"},
		{"/api/v1/events", "GET,HEAD,OPTIONS"},
		{"/healthz", "GET,HEAD,OPTIONS"},
		{"/openapi.json", "GET,HEAD,OPTIONS"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			e.t = t
			for _, m := range []string{"PUT", "POST", "DELETE", "TRACE"} {
				if strings.Contains(c.allow, m) {
					continue
				}
				r := e.do(m, c.path, nil)
				p := e.expect(r, http.StatusMethodNotAllowed)
				if got := allowOf(r.header); got != c.allow {
					t.Fatalf("%s %s: Allow %q, want %q", m, c.path, got, c.allow)
				}
				if p["type"] != "urn:storefleet:problem:method-not-allowed" {
					t.Fatalf("%v", p)
				}
			}
			r := e.do("OPTIONS", c.path, nil)
			if r.status != http.StatusNoContent || len(r.body) != 0 {
				t.Fatalf("OPTIONS %s: %d %q", c.path, r.status, r.body)
			}
			if got := allowOf(r.header); got != c.allow {
				t.Fatalf("OPTIONS %s: Allow %q, want %q", c.path, got, c.allow)
			}
		})
	}
	e.t = t
	r := e.do("OPTIONS", "/api/v1/stores/x", nil)
	if ap := r.header.Get("Accept-Patch"); !strings.Contains(ap, "application/merge-patch+json") {
		t.Fatalf("OPTIONS of a patchable route: Accept-Patch %q", ap)
	}
	// No route has the path: not documented, so sent past the document check.
	for _, m := range []string{"OPTIONS", "PUT", "FROB", "HEAD"} {
		req, _ := http.NewRequest(m, e.api.URL+"/nowhere", nil)
		res, err := e.api.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Allow") != "" {
			t.Fatalf("%s /nowhere: %d, Allow %q", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
	r = e.do("FROB", "/api/v1/stores", nil)
	e.expect(r, http.StatusMethodNotAllowed)
	if got := allowOf(r.header); got != "GET,HEAD,OPTIONS,POST" {
		t.Fatalf("FROB: Allow %q", got)
	}
}

// HEAD answers wherever GET does, with GET's status and headers and no body.
func TestHeadIsGetWithoutBody(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("head"), "Idempotency-Key", "head-1"), http.StatusAccepted)
	for _, path := range []string{
		"/healthz", "/readyz", "/openapi.json", "/api/v1/stores", "/api/v1/stores?limit=1", "/api/v1/stores/head",
		"/api/v1/stores/head/history", "/api/v1/requests/head-1", "/api/v1/stores/nope", "/api/v1/stores?limit=0",
	} {
		t.Run(path, func(t *testing.T) {
			e.t = t
			get := e.do("GET", path, nil)
			head := e.do("HEAD", path, nil)
			if head.status != get.status {
				t.Fatalf("HEAD %d, GET %d", head.status, get.status)
			}
			if len(head.body) != 0 {
				t.Fatalf("HEAD has a body: %q", head.body)
			}
			for _, h := range []string{"Content-Type", "Content-Length", "X-Content-Type-Options"} {
				if head.header.Get(h) != get.header.Get(h) {
					t.Errorf("%s: HEAD %q, GET %q", h, head.header.Get(h), get.header.Get(h))
				}
			}
			if cl := get.header.Get("Content-Length"); cl == "" {
				t.Errorf("GET has no Content-Length")
			}
		})
	}
}

// phase is checked like engine and plan: an unknown one is a 400 naming it, not an
// empty list.
func TestListRefusesUnknownPhase(t *testing.T) {
	e := newEnv(t)
	p := e.expect(e.do("GET", "/api/v1/stores?phase=bogus", nil), http.StatusBadRequest)
	if got := problemField(t, p); got != "phase/enum" {
		t.Fatalf("%s: %v", got, p)
	}
	for _, ph := range []string{"committed", "ready", "sourceFetched", "deleted"} {
		e.expect(e.do("GET", "/api/v1/stores?phase="+ph, nil), http.StatusOK)
	}
}

// An X-Actor that cannot be recorded is refused naming the header, never replaced
// by "anonymous".
func TestInvalidActorIsRefused(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	for _, a := range []string{"alice smith", "a\tb", "<script>", "jörg@example.com", strings.Repeat("a", 129), "", "a,b"} {
		for _, req := range []struct{ method, path string }{{"POST", "/api/v1/stores"}, {"GET", "/api/v1/stores"}} {
			var body any
			if req.method == "POST" {
				body = shop("actor")
			}
			p := e.expect(e.do(req.method, req.path, body, "X-Actor", a), http.StatusBadRequest)
			if got := problemField(t, p); got != "X-Actor/format" {
				t.Fatalf("X-Actor %q: %s %v", a, got, p)
			}
		}
	}
	// Given twice, it is ambiguous.
	req, _ := http.NewRequest("GET", e.api.URL+"/api/v1/stores", nil)
	req.Header.Add("X-Actor", "alice")
	req.Header.Add("X-Actor", "mallory")
	res, err := e.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("two X-Actor headers: %d", res.StatusCode)
	}
	if e.commits() != n {
		t.Fatal("a refused actor made a commit")
	}
	e.expect(e.do("POST", "/api/v1/stores", shop("actor"), "X-Actor", "alice+ops@example.com"), http.StatusAccepted)
	if got := trailer(e, "main", "Actor"); got != "alice+ops@example.com" {
		t.Fatalf("Actor trailer %q", got)
	}
}

// A request body in a content coding the server does not decode is refused with 415
// naming Content-Encoding, before anything is done.
func TestContentEncodingIsRefused(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, `{"name":"enc","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`)
	_ = zw.Close()
	for _, c := range []struct {
		method, path, coding string
		body                 any
	}{
		{"POST", "/api/v1/stores", "gzip", gz.Bytes()},
		{"POST", "/api/v1/stores", "identity, gzip", gz.Bytes()},
		{"PATCH", "/api/v1/stores/enc", "br", `{"plan":"premium"}`},
		{"DELETE", "/api/v1/stores/enc", "deflate", nil},
		{"GET", "/api/v1/stores", "gzip", nil},
	} {
		r := e.do(c.method, c.path, c.body, "Content-Encoding", c.coding)
		p := e.expect(r, http.StatusUnsupportedMediaType)
		if got := problemField(t, p); got != "Content-Encoding/contentCoding" {
			t.Fatalf("%s %s %s: %s %v", c.method, c.path, c.coding, got, p)
		}
		if p["type"] != "urn:storefleet:problem:unsupported-content-encoding" {
			t.Fatalf("%v", p)
		}
		if ae := r.header.Get("Accept-Encoding"); ae != "identity" {
			t.Fatalf("Accept-Encoding %q", ae)
		}
	}
	if e.commits() != n {
		t.Fatal("a refused encoding made a commit")
	}
	e.expect(e.do("POST", "/api/v1/stores", shop("enc"), "Content-Encoding", "identity"), http.StatusAccepted)
}
