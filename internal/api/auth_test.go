package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/store"
)

// tokens stands in for the access policy's Gate, which internal/serve's route table
// test runs for real; here the HTTP layer's own answers are under test.
func tokens(ctx context.Context, tok string) (*store.Principal, error) {
	switch tok {
	case "tok-alice":
		return &store.Principal{Subject: "token:alice", Method: store.AuthToken, Grants: map[string]store.Role{store.DefaultTenant: store.RoleEditor}}, nil
	case "tok-ops":
		return &store.Principal{Subject: "token:ops", Method: store.AuthToken, Grants: map[string]store.Role{store.AllTenants: store.RoleAdmin}, ActAs: true}, nil
	case "tok-acme":
		return &store.Principal{Subject: "token:acme", Method: store.AuthToken, Grants: map[string]store.Role{"acme": store.RoleAdmin}}, nil
	case "tok-down":
		return nil, store.Errorf(store.EUNAVAILABLE, "the issuer does not answer")
	}
	return nil, store.Errorf(store.EUNAUTHORIZED, "token expired")
}

func bearerOf(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// Every /api/v1 route needs a bearer token; the probes and the document do not. A
// refused token changes nothing.
func TestBearerAuthentication(t *testing.T) {
	e := newEnvWith(t, api.Options{Authenticate: tokens})
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if r := e.do("GET", p, nil); r.status != http.StatusOK {
			t.Fatalf("public %s without a token: %d %s", p, r.status, r.body)
		}
	}
	before := e.commits()
	for _, c := range []struct {
		name      string
		header    []string
		challenge string
	}{
		{"no token", nil, `Bearer realm="storefleet"`},
		{"not bearer", []string{"Authorization", "Basic YWxpY2U6c2VjcmV0"}, `Bearer realm="storefleet", error="invalid_request"`},
		{"empty bearer", []string{"Authorization", "Bearer "}, `Bearer realm="storefleet", error="invalid_request"`},
		{"invalid token", bearerOf("tok-expired"), `Bearer realm="storefleet", error="invalid_token"`},
	} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/api/v1/stores"}, {"POST", "/api/v1/stores"}, {"GET", "/api/v1/stores/a"}, {"DELETE", "/api/v1/stores/a"},
		} {
			var body any
			if req.method == "POST" {
				body = shop("refused")
			}
			r := e.do(req.method, req.path, body, c.header...)
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != c.challenge ||
				r.header.Get("Content-Type") != api.ContentProblem {
				t.Fatalf("%s, %s %s: %d %q %s", c.name, req.method, req.path, r.status, r.header.Get("WWW-Authenticate"), r.body)
			}
		}
	}
	if strings.Contains(string(e.do("GET", "/api/v1/stores", nil, bearerOf("tok-expired")...).body), "tok-expired") {
		t.Fatal("a 401 echoes the token")
	}
	if n := e.commits(); n != before {
		t.Fatalf("refused requests committed: %d commits, want %d", n, before)
	}
	r := e.do("GET", "/api/v1/stores", nil, bearerOf("tok-down")...)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("issuer down: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	e.expect(e.do("GET", "/api/v1/stores", nil, bearerOf("tok-alice")...), http.StatusOK)
}

// The Actor trailer is the authenticated subject. X-Actor from a principal that may
// act for others is whom it acts for and never the actor; from any other principal
// it is refused before anything is committed.
func TestActorIsTheAuthenticatedSubject(t *testing.T) {
	e := newEnvWith(t, api.Options{Authenticate: tokens})
	e.expect(e.do("POST", "/api/v1/stores", shop("mine"), bearerOf("tok-alice")...), http.StatusAccepted)
	if got := trailer(e, "main", "Actor"); got != "token:alice" {
		t.Fatalf("Actor trailer %q, want token:alice", got)
	}

	before := e.commits()
	h := append(bearerOf("tok-alice"), "X-Actor", "mallory")
	p := e.expect(e.do("POST", "/api/v1/stores", shop("forged"), h...), http.StatusForbidden)
	if got := problemField(t, p); got != "X-Actor/actAs" {
		t.Fatalf("forged X-Actor: %s %v", got, p)
	}
	e.expect(e.do("DELETE", "/api/v1/stores/mine", nil, h...), http.StatusForbidden)
	if n := e.commits(); n != before {
		t.Fatalf("a forged X-Actor committed: %d commits, want %d", n, before)
	}
	// A read with one is harmless: it records nothing.
	e.expect(e.do("GET", "/api/v1/stores/mine", nil, h...), http.StatusOK)

	h = append(bearerOf("tok-ops"), "X-Actor", "alice@example.com")
	e.expect(e.do("PATCH", "/api/v1/stores/mine", `{"plan":"standard"}`, h...), http.StatusAccepted)
	if got := trailer(e, "main", "Actor"); got != "token:ops" {
		t.Fatalf("Actor trailer %q, want token:ops (the one acted for is not the actor)", got)
	}
	if log := e.git("log", "--format=%(trailers:key=Actor,valueonly)", "main"); strings.Contains(log, "mallory") || strings.Contains(log, "alice@example.com") {
		t.Fatalf("a claimed actor reached an Actor trailer:\n%s", log)
	}
}

// Without authentication X-Actor stays the actor (make run on loopback), as before.
func TestWithoutAuthenticationXActorIsTheActor(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("claimed"), "Authorization", "Bearer ignored", "X-Actor", "alice"), http.StatusAccepted)
	if got := trailer(e, "main", "Actor"); got != "alice" {
		t.Fatalf("Actor trailer %q, want alice", got)
	}
}

// recorder keeps the Meta of the last Delete the handler made.
type recorder struct {
	store.Service
	meta store.Meta
}

func (r *recorder) Delete(ctx context.Context, name string, purge bool, m store.Meta) (store.Outcome, error) {
	r.meta = m
	return r.Service.Delete(ctx, name, purge, m)
}

// ?force=true reaches the lifecycle as Meta.Force; anything but a boolean given once
// is a 400 naming force, and only DELETE takes it.
func TestForceFlag(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{Service: e.svc}
	h := api.Handler(rec, api.Options{})
	e.expect(e.do("POST", "/api/v1/stores", shop("forced"), "X-Actor", "alice"), http.StatusAccepted)
	for _, q := range []string{"force=maybe", "force=true&force=false", "force="} {
		r := serveDirect(t, h, "DELETE", "/api/v1/stores/forced?"+q)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"force"`) {
			t.Fatalf("?%s: %d %s", q, r.status, r.body)
		}
	}
	r := e.do("POST", "/api/v1/stores?force=true", shop("other"))
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"force"`) {
		t.Fatalf("POST ?force=true: %d %s", r.status, r.body)
	}
	if r := serveDirect(t, h, "DELETE", "/api/v1/stores/forced?force=true&dryRun=true"); r.status != http.StatusOK || !rec.meta.Force {
		t.Fatalf("?force=true: %d, Meta.Force %v: %s", r.status, rec.meta.Force, r.body)
	}
	if r := serveDirect(t, h, "DELETE", "/api/v1/stores/forced?dryRun=true"); r.status != http.StatusOK || rec.meta.Force {
		t.Fatalf("no force: %d, Meta.Force %v", r.status, rec.meta.Force)
	}
}

// A burst past a caller's budget is 429 with Retry-After; reads and writes have
// separate budgets, each principal its own, and the budget comes back.
func TestRateLimits(t *testing.T) {
	const window = 300 * time.Millisecond
	e := newEnvWith(t, api.Options{Authenticate: tokens, Limits: api.Limits{Reads: 3, Writes: 2, Window: window}})
	alice := bearerOf("tok-alice")
	for i := 0; i < 3; i++ {
		e.expect(e.do("GET", "/api/v1/stores", nil, alice...), http.StatusOK)
	}
	r := e.do("GET", "/api/v1/stores", nil, alice...)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.header.Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("past the read budget: %d Retry-After %q limit %q %s", r.status, r.header.Get("Retry-After"), r.header.Get("X-RateLimit-Limit"), r.body)
	}
	if got := problemField(t, r.json(t)); got != "reads/rateLimit" {
		t.Fatalf("429 names %s", got)
	}
	// Writes still have their budget, and another principal its own.
	e.expect(e.do("POST", "/api/v1/stores", shop("burst"), alice...), http.StatusAccepted)
	e.expect(e.do("GET", "/api/v1/stores", nil, bearerOf("tok-ops")...), http.StatusOK)
	// Unauthenticated callers spend their address's budget, failed attempts too.
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/api/v1/stores", nil, bearerOf("guess")...); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	if r := e.do("GET", "/api/v1/stores", nil, bearerOf("guess")...); r.status != http.StatusTooManyRequests {
		t.Fatalf("guessing past the budget: %d", r.status)
	}
	// Two windows later nothing of the burst counts any more.
	time.Sleep(2*window + 10*time.Millisecond)
	e.expect(e.do("GET", "/api/v1/stores", nil, alice...), http.StatusOK)
}

// CORS is off: no Access-Control-* header, so a browser on another origin cannot
// read an answer or send a preflighted request.
func TestNoCORS(t *testing.T) {
	e := newEnvWith(t, api.Options{Authenticate: tokens})
	for _, req := range []struct{ method, path string }{
		{"OPTIONS", "/api/v1/stores"}, {"GET", "/api/v1/stores"}, {"GET", "/healthz"}, {"OPTIONS", "/api/v1/stores/a"},
	} {
		r := e.do(req.method, req.path, nil, append(bearerOf("tok-alice"),
			"Origin", "https://evil.example", "Access-Control-Request-Method", "DELETE", "Access-Control-Request-Headers", "authorization")...)
		for k := range r.header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Fatalf("%s %s answers %s: %v", req.method, req.path, k, r.header[k])
			}
		}
	}
}

// serveDirect sends one request straight to h.
func serveDirect(t *testing.T, h http.Handler, method, target string) response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}
