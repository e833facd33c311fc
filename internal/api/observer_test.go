package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
)

// obsRecorder is an api.Observer that keeps what it was told.
type obsRecorder struct {
	mu       sync.Mutex
	requests []string // method route code
	auths    []string // method result
	limited  []string
}

func (r *obsRecorder) HTTPRequest(method, route string, code int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, method+" "+route+" "+http.StatusText(code))
}

func (r *obsRecorder) Authentication(method, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auths = append(r.auths, method+" "+result)
}

func (r *obsRecorder) RateLimited(budget string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limited = append(r.limited, budget)
}

func (r *obsRecorder) has(list *[]string, want string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range *list {
		if s == want {
			return true
		}
	}
	return false
}

// The observer hears route patterns, never paths with a store's name in them;
// authentications by method and result; refusals by budget.
func TestObserver(t *testing.T) {
	rec := &obsRecorder{}
	e := newEnvWith(t, api.Options{Authenticate: tokens, Observer: rec, Limits: api.Limits{Reads: 2, Window: time.Hour}})
	alice := bearerOf("tok-alice")
	e.expect(e.do("POST", "/api/v1/stores", shop("observed"), alice...), http.StatusAccepted)
	e.expect(e.do("GET", "/api/v1/stores/observed", nil, alice...), http.StatusOK)
	e.expect(e.do("GET", "/api/v1/stores/unknown-one", nil, alice...), http.StatusNotFound)
	if r := e.do("GET", "/api/v1/stores", nil, alice...); r.status != http.StatusTooManyRequests {
		t.Fatalf("third read: %d", r.status)
	}
	e.do("GET", "/api/v1/stores", nil, bearerOf("tok-expired")...)
	e.do("GET", "/api/v1/stores", nil, bearerOf("tok-down")...)
	// Not through e.do: it checks every request against the OpenAPI document.
	if r, err := http.Get(e.api.URL + "/no/such/path"); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	e.do("GET", "/healthz", nil)

	for _, want := range []string{
		"POST /api/v1/stores Accepted",
		"GET /api/v1/stores/{name} OK",
		"GET /api/v1/stores/{name} Not Found",
		// Refused before routing inside /api/v1: the mount's pattern, still bounded.
		"GET /api/v1/* Too Many Requests",
		"GET  Not Found",
		"GET /healthz OK",
	} {
		if !rec.has(&rec.requests, want) {
			t.Errorf("no request %q in %q", want, rec.requests)
		}
	}
	for _, s := range rec.requests {
		if strings.Contains(s, "observed") || strings.Contains(s, "unknown-one") || strings.Contains(s, "/no/such") {
			t.Errorf("a path, not a pattern, reached the observer: %q", s)
		}
	}
	for _, want := range []string{"token ok", " invalid", " unavailable"} {
		if !rec.has(&rec.auths, want) {
			t.Errorf("no authentication %q in %q", want, rec.auths)
		}
	}
	if !rec.has(&rec.limited, "reads") {
		t.Errorf("the 429 was not counted: %q", rec.limited)
	}
}
