package api_test

import (
	"net/http"
	"testing"
)

// A request the request log no longer holds (a new process with a new log) is
// answered from its commit's Request-Id trailer.
func TestRequestFromTrailersAfterTheLogIsGone(t *testing.T) {
	e := newEnv(t)
	out := e.expect(e.do("POST", "/api/v1/stores", shop("trailed"), "Idempotency-Key", "key-trailed"), http.StatusAccepted)
	commit := out["commit"].(map[string]any)["sha"].(string)
	e.start() // a new clone, a new service, an empty request log
	got := e.expect(e.do("GET", "/api/v1/requests/key-trailed", nil), http.StatusOK)
	if got["state"] != "committed" || got["store"] != "trailed" || got["action"] != "create" {
		t.Fatalf("request from the trailer: %v", got)
	}
	if c, _ := got["commit"].(map[string]any); c == nil || c["sha"] != commit {
		t.Fatalf("commit %v, want %s", got["commit"], commit)
	}
	e.expect(e.do("GET", "/api/v1/requests/key-never-sent", nil), http.StatusNotFound)
}
