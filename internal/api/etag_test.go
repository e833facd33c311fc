package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func etagOf(sha string) string { return `"` + sha + `"` }

func shaOf(t *testing.T, acc map[string]any) string {
	t.Helper()
	c, ok := acc["commit"].(map[string]any)
	if !ok {
		t.Fatalf("no commit in %v", acc)
	}
	return c["sha"].(string)
}

// firstError returns the field and rule of a problem's first error.
func firstError(t *testing.T, p map[string]any) (string, string) {
	t.Helper()
	errs, _ := p["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("problem names no field: %v", p)
	}
	fe := errs[0].(map[string]any)
	return fe["field"].(string), fe["rule"].(string)
}

// A store's ETag is its last commit; PATCH and DELETE with If-Match apply only to
// that version, so a client cannot overwrite a change it never saw (412, nothing
// committed, the current ETag in the answer).
func TestETagAndIfMatch(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/stores", shop("shop"))
	v0 := shaOf(t, e.expect(r, http.StatusAccepted))
	if got := r.header.Get("ETag"); got != etagOf(v0) {
		t.Fatalf("202 to a create: ETag %q, want %q", got, etagOf(v0))
	}
	r = e.do("GET", "/api/v1/stores/shop", nil)
	e.expect(r, http.StatusOK)
	if got := r.header.Get("ETag"); got != etagOf(v0) {
		t.Fatalf("GET: ETag %q, want %q", got, etagOf(v0))
	}

	// Someone else changes the store.
	r = e.do("PATCH", "/api/v1/stores/shop", `{"settings":{"title":"Theirs"}}`, "If-Match", etagOf(v0))
	v1 := shaOf(t, e.expect(r, http.StatusAccepted))
	if r.header.Get("ETag") != etagOf(v1) || v1 == v0 || e.git("rev-parse", "main") != v1 {
		t.Fatalf("202 to a patch: ETag %q, commit %s (before %s)", r.header.Get("ETag"), v1, v0)
	}

	// The client that read v0 is refused, however it words the precondition.
	n := e.commits()
	for _, im := range []string{etagOf(v0), "W/" + etagOf(v1), etagOf(v0) + ", " + etagOf(strings.Repeat("0", 40))} {
		r = e.do("PATCH", "/api/v1/stores/shop", `{"settings":{"title":"Mine"}}`, "If-Match", im)
		p := e.expect(r, http.StatusPreconditionFailed)
		if p["type"] != "urn:storefleet:problem:precondition-failed" || r.header.Get("ETag") != etagOf(v1) {
			t.Fatalf("If-Match %s: %v, ETag %q", im, p, r.header.Get("ETag"))
		}
		if f, rule := firstError(t, p); f != "If-Match" || rule != "match" {
			t.Fatalf("If-Match %s: error %s/%s", im, f, rule)
		}
	}
	r = e.do("DELETE", "/api/v1/stores/shop", nil, "If-Match", etagOf(v0))
	e.expect(r, http.StatusPreconditionFailed)
	if e.commits() != n {
		t.Fatal("a refused precondition made a commit")
	}
	if got := e.expect(e.do("GET", "/api/v1/stores/shop", nil), http.StatusOK); got["settings"].(map[string]any)["title"] != "Theirs" {
		t.Fatalf("the other change was overwritten: %v", got)
	}
	// Not an entity tag: 400 naming the header.
	p := e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"plan":"standard"}`, "If-Match", v1), http.StatusBadRequest)
	if f, rule := firstError(t, p); f != "If-Match" || rule != "entityTag" {
		t.Fatalf("unquoted If-Match: %v", p)
	}

	// The current version, one of a list, or * passes.
	r = e.do("PATCH", "/api/v1/stores/shop", `{"plan":"standard"}`, "If-Match", etagOf(v0)+", "+etagOf(v1))
	v2 := shaOf(t, e.expect(r, http.StatusAccepted))
	r = e.do("PATCH", "/api/v1/stores/shop", `{"plan":"premium"}`, "If-Match", "*")
	v3 := shaOf(t, e.expect(r, http.StatusAccepted))
	if v2 == v1 || v3 == v2 {
		t.Fatal("patches made no new version")
	}

	// Delete and purge carry the precondition too; the purge's last step leaves no
	// store, so no ETag.
	r = e.do("DELETE", "/api/v1/stores/shop", nil, "If-Match", etagOf(v3))
	v4 := shaOf(t, e.expect(r, http.StatusAccepted))
	if r.header.Get("ETag") != etagOf(v4) {
		t.Fatalf("202 to a delete: ETag %q", r.header.Get("ETag"))
	}
	if got := e.do("GET", "/api/v1/stores/shop", nil); got.header.Get("ETag") != etagOf(v4) {
		t.Fatalf("GET of a retained store: ETag %q, want %q", got.header.Get("ETag"), etagOf(v4))
	}
	e.expect(e.do("DELETE", "/api/v1/stores/shop?purge=true", nil, "If-Match", etagOf(v3)), http.StatusPreconditionFailed)
	r = e.do("DELETE", "/api/v1/stores/shop?purge=true", nil, "If-Match", etagOf(v4))
	v5 := shaOf(t, e.expect(r, http.StatusAccepted))
	r = e.do("DELETE", "/api/v1/stores/shop?purge=true", nil, "If-Match", etagOf(v5))
	e.expect(r, http.StatusAccepted)
	if got := r.header.Get("ETag"); got != "" {
		t.Fatalf("202 to the purge's last step has ETag %q", got)
	}
	// A store that is not there is 404, precondition or not.
	e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"plan":"premium"}`, "If-Match", etagOf(v5)), http.StatusNotFound)
}

// Concurrent writers that read the same version: exactly one wins, the others get
// 412; the check and the commit happen under the store's lock.
func TestIfMatchRace(t *testing.T) {
	e := newEnv(t)
	v0 := shaOf(t, e.expect(e.do("POST", "/api/v1/stores", shop("race")), http.StatusAccepted))
	n := e.commits()
	const k = 6
	statuses := make([]int, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do("PATCH", "/api/v1/stores/race", fmt.Sprintf(`{"settings":{"title":"Writer %d"}}`, i), "If-Match", etagOf(v0)).status
		}()
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusAccepted:
			won++
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("statuses %v", statuses)
		}
	}
	if won != 1 || e.commits() != n+1 {
		t.Fatalf("%d writers won, %d commits (statuses %v); want exactly one", won, e.commits()-n, statuses)
	}
}

// A client's retry (same Idempotency-Key) of a change that was applied is answered
// with that change even though its If-Match no longer holds (the change itself
// moved the store on), also after a restart that forgot the request.
func TestIfMatchRetryWithIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	v0 := shaOf(t, e.expect(e.do("POST", "/api/v1/stores", shop("retry")), http.StatusAccepted))
	first := e.expect(e.do("PATCH", "/api/v1/stores/retry", `{"plan":"standard"}`, "If-Match", etagOf(v0), "Idempotency-Key", "patch-1"), http.StatusAccepted)
	e.start() // a new process, with a new request log: only Git remembers patch-1
	n := e.commits()
	again := e.expect(e.do("PATCH", "/api/v1/stores/retry", `{"plan":"standard"}`, "If-Match", etagOf(v0), "Idempotency-Key", "patch-1"), http.StatusAccepted)
	if shaOf(t, again) != shaOf(t, first) || e.commits() != n {
		t.Fatalf("retry answered %v, first %v", again, first)
	}
	// Another key with the stale version is refused as before.
	e.expect(e.do("PATCH", "/api/v1/stores/retry", `{"plan":"premium"}`, "If-Match", etagOf(v0), "Idempotency-Key", "patch-2"), http.StatusPreconditionFailed)
}

// A patch that changes nothing commits nothing: 200 with the store as GET gives it
// (same ETag), and its request's outcome says unchanged. A dry run of it says that
// nothing would change: an empty list, not a missing one.
func TestPatchThatChangesNothing(t *testing.T) {
	e := newEnv(t)
	v0 := shaOf(t, e.expect(e.do("POST", "/api/v1/stores", shop("same")), http.StatusAccepted))
	n := e.commits()
	for _, patch := range []string{`{"plan":"basic"}`, `{}`, `{"settings":{"title":"Shop same"}}`} {
		r := e.do("PATCH", "/api/v1/stores/same", patch)
		got := e.expect(r, http.StatusOK)
		if got["name"] != "same" || got["status"] == nil || got["commit"].(map[string]any)["sha"] != v0 || r.header.Get("ETag") != etagOf(v0) {
			t.Fatalf("no-op patch %s: %v, ETag %q", patch, got, r.header.Get("ETag"))
		}
		req := e.expect(e.do("GET", "/api/v1/requests/"+r.header.Get("X-Request-Id"), nil), http.StatusOK)
		if req["state"] != "unchanged" || req["commit"] != nil {
			t.Fatalf("outcome of a no-op patch: %v", req)
		}
	}
	if e.commits() != n {
		t.Fatal("a patch that changes nothing made a commit")
	}
	dry := e.expect(e.do("PATCH", "/api/v1/stores/same?dryRun=true", `{"plan":"basic"}`), http.StatusOK)
	if ch, ok := dry["changes"].([]any); !ok || len(ch) != 0 || dry["state"] != "dryRun" {
		t.Fatalf("dry run of a no-op patch: %v", dry)
	}
	dry = e.expect(e.do("PATCH", "/api/v1/stores/same?dryRun=true", `{"plan":"standard"}`), http.StatusOK)
	if ch, ok := dry["changes"].([]any); !ok || len(ch) == 0 {
		t.Fatalf("dry run of a real patch: %v", dry)
	}
}
