package serve_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
)

// replicaPair starts two gitops-api processes on one fleet repository served over
// HTTP on loopback, each with its own data dir, as two replicas of one Deployment.
func replicaPair(t *testing.T, argsA, argsB []string) (a, b *proc, bare string) {
	t.Helper()
	bin := buildBinary(t)
	remote, bare := githttp.ServeFleet(t)
	a = start(t, bin, append([]string{"--fleet-url", remote, "--data-dir", t.TempDir()}, argsA...)...)
	b = start(t, bin, append([]string{"--fleet-url", remote, "--data-dir", t.TempDir()}, argsB...)...)
	t.Cleanup(func() {
		for _, p := range []*proc{a, b} {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	})
	return a, b, bare
}

func do(t *testing.T, method, url, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// A store created on one replica is found on the other at once: the other has no
// background fetch to speak of (an hour), so only its fetch on a miss can find it,
// for GET, PATCH, history and DELETE alike.
func TestReplicaFetchesOnMiss(t *testing.T) {
	a, b, _ := replicaPair(t, nil, []string{"--fetch-interval", "1h"})
	client := &http.Client{Timeout: 60 * time.Second}
	for i := range 3 {
		name := fmt.Sprintf("miss-%d", i)
		if st, err := create(client, a.url, name, "key-"+name); err != nil || st != http.StatusAccepted {
			t.Fatalf("create %s on A: %d %v\n%s", name, st, err, a.logs)
		}
		if st, body := do(t, "GET", b.url+"/api/v1/stores/"+name, "", ""); st != http.StatusOK {
			t.Fatalf("GET %s on B right after A's 202: %d %s", name, st, body)
		}
	}
	if st, body := do(t, "GET", b.url+"/api/v1/stores/miss-never", "", ""); st != http.StatusNotFound {
		t.Fatalf("GET of a store nobody created: %d %s, want 404", st, body)
	}
	// Known only to A until B is asked about them.
	if st, err := create(client, a.url, "miss-patch", "key-miss-patch"); err != nil || st != http.StatusAccepted {
		t.Fatalf("create on A: %d %v", st, err)
	}
	if st, body := do(t, "PATCH", b.url+"/api/v1/stores/miss-patch", "application/merge-patch+json", `{"plan":"standard"}`); st != http.StatusAccepted {
		t.Fatalf("PATCH on B of A's store: %d %s", st, body)
	}
	if st, err := create(client, a.url, "miss-hist", "key-miss-hist"); err != nil || st != http.StatusAccepted {
		t.Fatalf("create on A: %d %v", st, err)
	}
	if st, body := do(t, "GET", b.url+"/api/v1/stores/miss-hist/history", "", ""); st != http.StatusOK || !strings.Contains(body, "create") {
		t.Fatalf("history on B of A's store: %d %s", st, body)
	}
	if st, err := create(client, a.url, "miss-del", "key-miss-del"); err != nil || st != http.StatusAccepted {
		t.Fatalf("create on A: %d %v", st, err)
	}
	if st, body := do(t, "DELETE", b.url+"/api/v1/stores/miss-del", "", ""); st != http.StatusAccepted {
		t.Fatalf("DELETE on B of A's store: %d %s", st, body)
	}
}

// Without asking for a store by name, the other replica learns of it (and of a change
// to a store it already knew) from its background fetch: the list, which never
// fetches on a miss, shows it.
func TestReplicaFollowsInBackground(t *testing.T) {
	a, b, _ := replicaPair(t, nil, []string{"--fetch-interval", "200ms"})
	client := &http.Client{Timeout: 60 * time.Second}
	if st, err := create(client, a.url, "bg-one", "key-bg-one"); err != nil || st != http.StatusAccepted {
		t.Fatalf("create on A: %d %v\n%s", st, err, a.logs)
	}
	t0 := time.Now()
	waitFor(t, "B lists A's store", func() bool {
		_, body := do(t, "GET", b.url+"/api/v1/stores", "", "")
		return strings.Contains(body, `"bg-one"`)
	})
	t.Logf("B listed A's new store %s after the 202", time.Since(t0).Round(time.Millisecond))
	if st, body := do(t, "GET", b.url+"/api/v1/stores/bg-one", "", ""); st != http.StatusOK || !strings.Contains(body, `"basic"`) {
		t.Fatalf("GET on B: %d %s", st, body)
	}
	if st, body := do(t, "PATCH", a.url+"/api/v1/stores/bg-one", "application/merge-patch+json", `{"plan":"premium"}`); st != http.StatusAccepted {
		t.Fatalf("PATCH on A: %d %s", st, body)
	}
	t0 = time.Now()
	waitFor(t, "B shows A's change", func() bool {
		_, body := do(t, "GET", b.url+"/api/v1/stores/bg-one", "", "")
		var v struct {
			Plan string `json:"plan"`
		}
		_ = json.Unmarshal([]byte(body), &v)
		return v.Plan == "premium"
	})
	t.Logf("B showed A's change %s after the 202", time.Since(t0).Round(time.Millisecond))
}

// waitFor polls cond until it holds; a minute without is a failure (the visibility
// bound itself is measured and logged, not asserted: the machine is shared).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
