package faults

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
)

// The fleet remote goes into a black hole (connections accepted, nothing ever
// answered) under a running gitops-api with a small --write-timeout.
func TestBlackHoledRemote(t *testing.T) { remoteFault(t, modeBlackHole) }

// The fleet remote refuses connections (nothing listens on its port).
func TestRefusingRemote(t *testing.T) { remoteFault(t, modeRefuse) }

// remoteFault checks the write-deadline contract while the remote is cut, and
// after it heals:
//   - every write is answered within --write-timeout + 1 s: 202 once landed, 503 +
//     Retry-After when nothing landed, or 202 state pending + Location
//     /api/v1/requests/{id} when the outcome is not yet known;
//   - GET /api/v1/requests/{id} answers within the same bound and never says
//     committed for a request answered 503;
//   - once the remote is back: every pending request is decided (committed or
//     failed) and its GET says what Git has; no request answered 503 or decided
//     failed ever lands, also after later writes have gone through; a committed one
//     is on exactly one commit; a 503 retried with its key lands once.
func remoteFault(t *testing.T, mode int32) {
	wt := envDuration(t, "FAULT_WRITE_TIMEOUT", 3*time.Second)
	bound := envDuration(t, "FAULT_RESTART_BOUND", time.Minute)
	limit := wt + time.Second

	srv, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bare, err := srv.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	px := newProxy(t, strings.TrimPrefix(srv.URL(), "http://"))
	p := start(t, "--data-dir", t.TempDir(), "--fleet-url", "http://"+px.addr+"/fleet.git", "--write-timeout", wt.String())
	client := &http.Client{Timeout: wt + time.Minute}

	if a, err := do(client, "POST", p.url+"/api/v1/stores", "before", "application/json", createBody("before")); err != nil || a.status != http.StatusAccepted {
		t.Fatalf("create before the remote is cut: %v %v\n%s", a, err, p.logs.tail())
	}

	if mode == modeBlackHole {
		px.blackHole()
	} else {
		px.refuse(t)
	}

	type result struct {
		op   op
		a    answer
		err  error
		wave int
	}
	var (
		mu      sync.Mutex
		results []result
		slowest time.Duration
	)
	for wave := range 2 {
		var ops []op
		for i := range 6 {
			name := fmt.Sprintf("cut-%d-%d", wave, i)
			ops = append(ops, op{key: "key-" + name, method: "POST", path: "/api/v1/stores", contentType: "application/json", body: createBody(name), store: name})
		}
		ops = append(ops, op{key: fmt.Sprintf("key-patch-%d", wave), method: "PATCH", path: "/api/v1/stores/before",
			contentType: "application/merge-patch+json", body: fmt.Sprintf(`{"settings":{"title":"cut-%d"}}`, wave), store: "before"})
		var wg sync.WaitGroup
		for _, o := range ops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := do(client, o.method, p.url+o.path, o.key, o.contentType, o.body)
				mu.Lock()
				results = append(results, result{op: o, a: a, err: err, wave: wave})
				slowest = max(slowest, a.took)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}

	failedAnswer := map[string]bool{} // answered 503: must never land
	pending := map[string]bool{}
	committed := map[string]bool{}
	counts := map[string]int{}
	for _, r := range results {
		what := fmt.Sprintf("%s %s (key %s, wave %d)", r.op.method, r.op.path, r.op.key, r.wave)
		if r.err != nil {
			t.Errorf("%s: no answer: %v after %v", what, r.err, r.a.took)
			continue
		}
		if r.a.took > limit {
			t.Errorf("%s: answered after %v, more than --write-timeout %v + 1s", what, r.a.took, wt)
		}
		switch {
		case r.a.status == http.StatusServiceUnavailable:
			checkUnavailable(t, what, r.a)
			failedAnswer[r.op.key] = true
			counts["503"]++
		case r.a.status == http.StatusAccepted && r.a.str("state") == "pending":
			if loc, want := r.a.header.Get("Location"), "/api/v1/requests/"+r.op.key; loc != want {
				t.Errorf("%s: pending with Location %q, want %q", what, loc, want)
			}
			pending[r.op.key] = true
			counts["202 pending"]++
		case r.a.status == http.StatusAccepted:
			committed[r.op.key] = true
			counts["202 "+r.a.str("state")]++
		default:
			t.Errorf("%s: %v, want 202 or 503 + Retry-After", what, r.a)
			counts[fmt.Sprint(r.a.status)]++
		}
	}

	// The request endpoint while the remote is still cut.
	for _, r := range results {
		a, err := do(client, "GET", p.url+"/api/v1/requests/"+r.op.key, "", "", "")
		switch {
		case err != nil:
			t.Errorf("GET request %s while cut: %v", r.op.key, err)
		case a.took > limit:
			t.Errorf("GET request %s while cut: answered after %v", r.op.key, a.took)
		case failedAnswer[r.op.key] && a.status == http.StatusOK && a.str("state") == "committed":
			t.Errorf("GET request %s while cut says committed; it was answered 503", r.op.key)
		}
	}

	px.heal(t)
	t0 := time.Now()
	var healed time.Duration
	for {
		a, err := do(client, "POST", p.url+"/api/v1/stores", "after", "application/json", createBody("after"))
		if err == nil && a.status == http.StatusAccepted {
			if a.str("state") == "pending" {
				settle(t, client, p.url, []string{"after"}, bound)
			}
			healed = time.Since(t0)
			break
		}
		if err == nil && a.status != http.StatusServiceUnavailable {
			t.Fatalf("create once the remote is back: %v", a)
		}
		if time.Since(t0) > bound {
			t.Fatalf("no write landed within %v of the remote coming back (liveness bound): %v %v\n%s", bound, a, err, p.logs.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var ids []string
	for id := range pending {
		ids = append(ids, id)
	}
	decided := settle(t, client, p.url, ids, bound)
	for id, state := range decided {
		counts["pending→"+state]++
		if state == "committed" {
			committed[id] = true
		} else {
			failedAnswer[id] = true
		}
	}
	// A write that was refused must not land later either: give a stray retry
	// inside the process time to happen, then write once more and look.
	time.Sleep(2 * wt)
	if a, err := do(client, "POST", p.url+"/api/v1/stores", "after-2", "application/json", createBody("after-2")); err != nil || a.status != http.StatusAccepted {
		t.Errorf("second create once the remote is back: %v %v", a, err)
	}
	landed := requestIDs(t, bare)
	for id := range failedAnswer {
		if landed[id] != 0 {
			t.Errorf("request %s was answered 503 (or decided failed) but landed", id)
		}
	}
	for id := range committed {
		if landed[id] != 1 {
			t.Errorf("request %s is committed but on %d commits", id, landed[id])
		}
	}
	for _, r := range results {
		a, err := do(client, "GET", p.url+"/api/v1/requests/"+r.op.key, "", "", "")
		if err != nil {
			t.Errorf("GET request %s once healed: %v", r.op.key, err)
			continue
		}
		state := a.str("state")
		switch {
		case committed[r.op.key] && (a.status != http.StatusOK || state != "committed"):
			t.Errorf("GET request %s once healed: %v; it is in Git", r.op.key, a)
		case failedAnswer[r.op.key] && a.status == http.StatusOK && state != "failed":
			t.Errorf("GET request %s once healed: %v; it never landed", r.op.key, a)
		case failedAnswer[r.op.key] && a.status != http.StatusOK && a.status != http.StatusNotFound:
			t.Errorf("GET request %s once healed: %v", r.op.key, a)
		}
	}
	// 503 means nothing happened: the same request, retried with its key, lands once.
	retried := 0
	for _, r := range results {
		if !failedAnswer[r.op.key] || pending[r.op.key] {
			continue
		}
		a, err := do(client, r.op.method, p.url+r.op.path, r.op.key, r.op.contentType, r.op.body)
		if err != nil || a.status != http.StatusAccepted {
			t.Errorf("retry of %s %s (key %s) after its 503: %v %v", r.op.method, r.op.path, r.op.key, a, err)
			continue
		}
		if a.str("state") == "pending" {
			settle(t, client, p.url, []string{r.op.key}, bound)
		}
		retried++
	}
	landed = requestIDs(t, bare)
	for _, r := range results {
		if failedAnswer[r.op.key] && !pending[r.op.key] && landed[r.op.key] != 1 {
			t.Errorf("retried request %s is on %d commits, want 1", r.op.key, landed[r.op.key])
		}
	}
	p.stop(t)
	name := map[int32]string{modeBlackHole: "black-holed", modeRefuse: "refusing"}[mode]
	t.Logf("FIGURES %s remote: write-timeout=%v writes=%d slowest-answer=%v (bound %v) answers=%v "+
		"first-write-after-heal=%v retried-503s=%d none-landed-after-failure=%v",
		name, wt, len(results), slowest.Round(time.Millisecond), limit, counts, healed.Round(time.Millisecond), retried, !t.Failed())
}
