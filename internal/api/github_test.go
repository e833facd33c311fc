package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/store"
)

// receiver stands for the GitHub writer's Receive (its signature check is tested in
// internal/github): it refuses a delivery without a signature and records the rest.
type receiver struct {
	mu  sync.Mutex
	got []store.Delivery
}

func (r *receiver) Receive(ctx context.Context, d store.Delivery) error {
	switch {
	case d.Signature == "":
		return store.Errorf(store.EUNAUTHORIZED, "the delivery's X-Hub-Signature-256 is missing or does not match")
	case d.ID == "":
		return &store.Error{Code: store.EINVALID, Message: "a delivery names its event and id",
			Fields: []store.FieldError{{Field: "X-GitHub-Delivery", Rule: "required", Message: "required"}}}
	case d.ID == "full":
		return store.Errorf(store.EUNAVAILABLE, "too many webhook deliveries queued")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	return nil
}

// The webhook route takes no bearer token even with authentication on: GitHub signs
// its deliveries instead, and the signature decides.
func TestGitHubWebhookRoute(t *testing.T) {
	rcv := &receiver{}
	refuseAll := func(ctx context.Context, token string) (*store.Principal, error) {
		return nil, store.Errorf(store.EUNAUTHORIZED, "no token is good here")
	}
	srv := httptest.NewServer(api.Handler(nil, api.Options{Authenticate: refuseAll, GitHub: rcv}))
	defer srv.Close()
	post := func(sig, id string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+api.WebhookPath, strings.NewReader(`{"zen":"Design for failure."}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "ping")
		if id != "" {
			req.Header.Set("X-GitHub-Delivery", id)
		}
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	resp, body := post("", "d1")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" ||
		resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("unsigned: %d %v %v", resp.StatusCode, resp.Header, body)
	}
	if errs, _ := body["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "X-Hub-Signature-256" {
		t.Fatalf("unsigned: the problem does not name the header: %v", body)
	}
	if resp, body := post("sha256=00", ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no delivery id: %d %v", resp.StatusCode, body)
	}
	if resp, _ := post("sha256=00", "full"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("queue full: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := post("sha256=00", "d2"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("signed: %d %v", resp.StatusCode, body)
	}
	if len(rcv.got) != 1 || rcv.got[0].Event != "ping" || rcv.got[0].ID != "d2" || string(rcv.got[0].Payload) != `{"zen":"Design for failure."}` {
		t.Fatalf("delivered %+v", rcv.got)
	}
	// The rest of /api/v1 still wants a token.
	r2, err := http.Get(srv.URL + "/api/v1/stores")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/api/v1/stores without a token: %d", r2.StatusCode)
	}
}

// unavailableSvc refuses every create as a dependency asking for a pause would.
type unavailableSvc struct {
	store.Service
	wait time.Duration
}

func (u unavailableSvc) Create(ctx context.Context, s store.Store, m store.Meta) (store.Outcome, error) {
	return store.Outcome{}, &store.Error{Code: store.EUNAVAILABLE, Message: "GitHub is rate-limiting this service", RetryAfter: u.wait}
}

// A dependency's own Retry-After (GitHub's rate limits) reaches the client when it
// is longer than the API's default; a shorter one does not shorten the default.
func TestRetryAfterFromTheDependency(t *testing.T) {
	for wait, want := range map[time.Duration]string{90 * time.Second: "90", time.Second: "5", 0: "5"} {
		srv := httptest.NewServer(api.Handler(unavailableSvc{wait: wait}, api.Options{}))
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/stores", strings.NewReader(`{"name":"shop","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != want {
			t.Errorf("dependency asked %s: %d, Retry-After %q, want %q", wait, resp.StatusCode, resp.Header.Get("Retry-After"), want)
		}
	}
}
