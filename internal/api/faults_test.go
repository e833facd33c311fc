package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
)

const faultDeadline = time.Second

// faultyEnv is the API writing through a proxy that injects faults between the
// writer and the real git server, with a short write deadline.
func faultyEnv(t *testing.T) (*env, *githttp.Proxy) {
	t.Helper()
	e := newEnv(t)
	p, err := githttp.NewProxy(strings.TrimPrefix(strings.TrimSuffix(e.remote, "/fleet.git"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	e.api.Close()
	e.api = apiOn(t, "http://"+p.Addr()+"/fleet.git", faultDeadline)
	return e, p
}

// apiOn is the API of one gitops-api process on the fleet remote at url: its own
// clone, service and server.
func apiOn(t *testing.T, url string, deadline time.Duration) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: url, WriteTimeout: deadline})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{
		Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()},
		RequestLog: filepath.Join(t.TempDir(), "requests.jsonl"), WriteTimeout: deadline,
		Charts: chartindex.Dir{Path: filepath.Join("..", "..", "charts")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	srv := httptest.NewServer(api.Handler(svc, api.Options{}))
	t.Cleanup(srv.Close)
	return srv
}

// Two processes creating stores on one fleet at once: contention is retried, never
// answered with a 5xx.
func TestTwoProcessesContendWithout5xx(t *testing.T) {
	e := newEnv(t)
	procs := []*httptest.Server{apiOn(t, e.remote, 30*time.Second), apiOn(t, e.remote, 30*time.Second)}
	const per = 20
	var wg sync.WaitGroup
	statuses := make(chan string, 2*per)
	for i := 0; i < per; i++ {
		for j, srv := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, _ := json.Marshal(shop(fmt.Sprintf("p%d-%d", j, i)))
				res, err := srv.Client().Post(srv.URL+"/api/v1/stores", "application/json", bytes.NewReader(body))
				if err != nil {
					statuses <- err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusAccepted {
					statuses <- fmt.Sprintf("%d %s", res.StatusCode, b)
				}
			}()
		}
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		t.Error(s)
	}
	for j := range procs {
		for i := 0; i < per; i++ {
			if _, ok := e.file(storeDir(fmt.Sprintf("p%d-%d", j, i)) + "/kustomization.yaml"); !ok {
				t.Errorf("p%d-%d is not on the branch", j, i)
			}
		}
	}
}

// setFault injects a fault. The proxy drops the open connections; the pause lets the
// client's HTTP transport see its kept-alive one closed. Otherwise a push may be
// written on the dead connection and fail reading the answer, which the writer must
// (and does) take for an unknown outcome, not for the fault under test.
func setFault(p *githttp.Proxy, f githttp.Fault, code int) {
	p.Set(f, code)
	time.Sleep(100 * time.Millisecond)
}

// A remote that refuses the connection or answers an error: 503 with Retry-After and
// the cause's problem type, and nothing on the branch.
func TestRefusedWriteIs503WithCause(t *testing.T) {
	e, p := faultyEnv(t)
	before := e.commits()
	p.Down()
	time.Sleep(100 * time.Millisecond) // as in setFault
	r := e.do("POST", "/api/v1/stores", shop("down"))
	got := e.expect(r, http.StatusServiceUnavailable)
	if got["type"] != "urn:storefleet:problem:remote-unreachable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("closed port: %v, Retry-After %q", got, r.header.Get("Retry-After"))
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	setFault(p, githttp.Status, 500)
	r = e.do("POST", "/api/v1/stores", shop("down"))
	got = e.expect(r, http.StatusServiceUnavailable)
	if got["type"] != "urn:storefleet:problem:remote-refused" || r.header.Get("Retry-After") == "" {
		t.Fatalf("500 from the remote: %v, Retry-After %q", got, r.header.Get("Retry-After"))
	}
	if n := e.commits(); n != before {
		t.Fatalf("%d commits after refused writes, %d before", n, before)
	}
	setFault(p, githttp.Forward, 0)
	e.expect(e.do("POST", "/api/v1/stores", shop("down")), http.StatusAccepted)
}

// pollRequest GETs a request until it is no longer pending.
func pollRequest(e *env, loc string) map[string]any {
	e.t.Helper()
	for stop := time.Now().Add(time.Minute); time.Now().Before(stop); time.Sleep(50 * time.Millisecond) {
		got := e.expect(e.do("GET", loc, nil), http.StatusOK)
		if got["state"] != "pending" {
			return got
		}
	}
	e.t.Fatalf("%s still pending after a minute", loc)
	return nil
}

// A black-holed remote: the create is answered by the deadline with 202 pending and
// the request's Location; the request says pending until the remote answers, then
// failed, and the store never lands; the same Idempotency-Key may then be sent again.
func TestBlackHoledWriteIsPendingThenFailed(t *testing.T) {
	e, p := faultyEnv(t)
	setFault(p, githttp.BlackHole, 0)
	start := time.Now()
	r := e.do("POST", "/api/v1/stores", shop("held"), "Idempotency-Key", "key-held")
	took := time.Since(start)
	t.Logf("black-holed create answered after %v", took)
	got := e.expect(r, http.StatusAccepted)
	loc := r.header.Get("Location")
	if got["state"] != "pending" || loc != "/api/v1/requests/key-held" {
		t.Fatalf("cut-off create: %v, Location %q", got, loc)
	}
	if took > faultDeadline+5*time.Second {
		t.Errorf("answered after %v, deadline %v", took, faultDeadline)
	}
	if st := e.expect(e.do("GET", loc, nil), http.StatusOK); st["state"] != "pending" {
		t.Fatalf("while black-holed: %v", st)
	}
	setFault(p, githttp.Forward, 0)
	done := pollRequest(e, loc)
	if done["state"] != "failed" || !strings.Contains(done["reason"].(string), "nothing landed") {
		t.Fatalf("decided: %v", done)
	}
	if _, ok := e.file(storeDir("held") + "/kustomization.yaml"); ok {
		t.Fatal("a create answered failed landed")
	}
	again := e.expect(e.do("POST", "/api/v1/stores", shop("held"), "Idempotency-Key", "key-held"), http.StatusAccepted)
	if again["state"] != "committed" {
		t.Fatalf("sent again: %v", again)
	}
}

// A push the remote applied but whose answer was lost: 202 pending, then committed,
// and the store is there.
func TestLostAnswerIsPendingThenCommitted(t *testing.T) {
	e, p := faultyEnv(t)
	setFault(p, githttp.LoseAnswers, 0)
	r := e.do("POST", "/api/v1/stores", shop("lost"), "Idempotency-Key", "key-lost")
	got := e.expect(r, http.StatusAccepted)
	if got["state"] != "pending" {
		t.Fatalf("create with a lost answer: %v", got)
	}
	setFault(p, githttp.Forward, 0)
	done := pollRequest(e, r.header.Get("Location"))
	sha := e.git("rev-parse", "main")
	if c, _ := done["commit"].(map[string]any); done["state"] != "committed" || c == nil || c["sha"] != sha {
		t.Fatalf("decided: %v, want committed at %s", done, sha)
	}
	e.expect(e.do("GET", "/api/v1/stores/lost", nil), http.StatusOK)
}
