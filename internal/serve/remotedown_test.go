package serve_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/serve"
)

// Credentials in --fleet-url, and one a test can search for in everything the
// process shows.
const (
	urlUser = "robot-q7zk"
	urlPass = "pw-s3cr3t-9xq2"
)

// A fleet remote that is down when gitops-api starts used to make it exit 1. Now it
// serves: with no clone yet every store route answers 503 + Retry-After (an empty
// list would be a lie), /readyz 503 names the cause, and the process becomes ready by
// itself once the remote answers. Restarted with the clone on disk and the remote down
// again, it serves reads from the clone, refuses writes with 503 + Retry-After having
// pushed nothing, and again heals by itself, also after the remote answered 403 and
// 500 for a while. The password in --fleet-url shows in no output and no response.
func TestStartWithTheRemoteDown(t *testing.T) {
	rm := newGitRemote(t, urlUser, urlPass)
	rm.up()
	rm.down() // an address that refuses connections, and that the remote comes back on
	fleetURL := rm.url(urlUser + ":" + urlPass)
	data := t.TempDir()
	all := &transcript{}
	defer all.mustNotShow(t, urlPass, urlUser)

	s := runServe(t, all, nil, "--data-dir", data, "--fleet-url", fleetURL)
	if !strings.Contains(s.err.String(), "--fleet-url carries credentials") {
		t.Errorf("no warning about the credentials in --fleet-url:\n%s", s.err)
	}
	if r := s.do("GET", "/healthz", ""); r.status != http.StatusOK {
		t.Errorf("/healthz while the remote is down: %d, want 200 (liveness)", r.status)
	}
	p := unavailable(t, "/readyz, no clone, remote down", s.do("GET", "/readyz", ""))
	if d, _ := p["detail"].(string); !strings.HasPrefix(d, "remote unreachable") {
		t.Errorf("/readyz detail %q does not name the cause", d)
	}
	for _, path := range []string{"/api/v1/stores", "/api/v1/stores/alpha", "/api/v1/stores/alpha/history"} {
		unavailable(t, "GET "+path+" with no clone", s.do("GET", path, ""))
	}
	unavailable(t, "create with no clone", s.do("POST", "/api/v1/stores", storeBody("alpha")))

	rm.up()
	s.await("/readyz", http.StatusOK, "")
	if r := s.do("GET", "/api/v1/stores", ""); r.status != http.StatusOK {
		t.Fatalf("list once the remote answered: %d %s", r.status, r.body)
	}
	if r := s.do("POST", "/api/v1/stores", storeBody("alpha")); r.status != http.StatusAccepted {
		t.Fatalf("create once the remote answered: %d %s", r.status, r.body)
	}
	s.stop()

	// Again, with a clone on disk.
	rm.down()
	head := gitOut(t, rm.bare, "rev-parse", "main")
	s = runServe(t, all, nil, "--data-dir", data, "--fleet-url", fleetURL)
	var list struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	r := s.do("GET", "/api/v1/stores", "")
	if err := json.Unmarshal(r.body, &list); r.status != http.StatusOK || err != nil || len(list.Items) != 1 || list.Items[0].Name != "alpha" {
		t.Fatalf("list from the clone with the remote down: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/api/v1/stores/alpha", "/api/v1/stores/alpha/history"} {
		if r := s.do("GET", path, ""); r.status != http.StatusOK {
			t.Errorf("GET %s from the clone: %d %s", path, r.status, r.body)
		}
	}
	unavailable(t, "/readyz, remote down", s.do("GET", "/readyz", ""))
	unavailable(t, "create, remote down", s.do("POST", "/api/v1/stores", storeBody("beta")))
	unavailable(t, "delete, remote down", s.do("DELETE", "/api/v1/stores/alpha", ""))

	// A remote that answers, but refuses.
	for _, mode := range []string{"403", "500"} {
		rm.set(mode)
		rm.up()
		s.await("/readyz", http.StatusServiceUnavailable, "remote refusing")
		unavailable(t, "create, remote answering "+mode, s.do("POST", "/api/v1/stores", storeBody("beta")))
		rm.down()
	}
	if got := gitOut(t, rm.bare, "rev-parse", "main"); got != head {
		t.Fatalf("a write refused with 503 moved the remote's main from %s to %s", head, got)
	}
	rm.set("")
	rm.up()
	s.await("/readyz", http.StatusOK, "")
	if r := s.do("POST", "/api/v1/stores", storeBody("beta")); r.status != http.StatusAccepted {
		t.Fatalf("create once the remote answered again: %d %s", r.status, r.body)
	}
	if got := storesIn(t, rm.bare); !got["alpha"] || !got["beta"] || len(got) != 2 {
		t.Errorf("remote holds %v, want alpha and beta", got)
	}
	// Nor is it kept on disk: the clone's config, the request log, anything.
	s.stop()
	err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, secret := range []string{urlPass, urlUser} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds %q", path, secret)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// While serving, /readyz follows the remote: a remote that goes away, one that
// accepts connections and never answers, and one that refuses each make it 503 with
// the cause named, and it is ready again by itself once the remote answers.
func TestReadyzFollowsTheRemote(t *testing.T) {
	rm := newGitRemote(t, urlUser, urlPass)
	rm.up()
	all := &transcript{}
	defer all.mustNotShow(t, urlPass, urlUser)
	s := runServe(t, all, nil, "--data-dir", t.TempDir(), "--fleet-url", rm.url(urlUser+":"+urlPass))
	s.await("/readyz", http.StatusOK, "")

	// A storm of probes reaches the remote once per readiness period (2 s), however
	// long the storm takes: a bound on the rate, not on the time.
	before, t0 := rm.hits.Load(), time.Now()
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.do("GET", "/readyz", "")
		}()
	}
	wg.Wait()
	if n, most := rm.hits.Load()-before, 1+int64(time.Since(t0)/(2*time.Second))+1; n > most {
		t.Errorf("200 probes sent %d requests to the remote, want at most %d", n, most)
	}

	for _, fault := range []struct{ mode, cause string }{
		{"down", "remote unreachable"},
		{"hang", "remote unreachable"},
		{"403", "remote refusing"},
		{"500", "remote refusing"},
	} {
		if fault.mode == "down" {
			rm.down()
		} else {
			rm.set(fault.mode)
		}
		r := s.await("/readyz", http.StatusServiceUnavailable, fault.cause)
		unavailable(t, "/readyz, remote "+fault.mode, r)
		if strings.Contains(string(r.body), rm.addr) || strings.Contains(string(r.body), "fleet.git") {
			t.Errorf("/readyz body shows the remote's address: %s", r.body)
		}
		if fault.mode == "down" {
			rm.up()
		}
		rm.set("")
		s.await("/readyz", http.StatusOK, "")
	}
}

// A token or password given the intended way, in the environment, shows nowhere
// either, also when the remote refuses it; and a start-up error over a URL with
// credentials in it does not print them.
func TestCredentialsShowNowhere(t *testing.T) {
	const token = "tok-8c1f-secret-44"
	rm := newGitRemote(t, "x-access-token", "the-right-one")
	rm.up()
	all := &transcript{}
	s := runServe(t, all, map[string]string{
		"STOREFLEET_FLEET_USERNAME": "x-access-token", "STOREFLEET_FLEET_PASSWORD": token,
	}, "--data-dir", t.TempDir(), "--fleet-url", rm.url(""))
	s.await("/readyz", http.StatusServiceUnavailable, "remote refusing")
	unavailable(t, "create with a refused token", s.do("POST", "/api/v1/stores", storeBody("alpha")))
	s.stop()
	all.mustNotShow(t, token)

	// A URL that does not parse: the parser's error quotes it.
	var stderr strings.Builder
	bad := "https://" + urlUser + ":" + urlPass + "@127.0.0.1:notaport/fleet.git"
	err := serve.Run(context.Background(), []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "d"), "--fleet-url", bad},
		func(string) string { return "" }, &stderr, &stderr)
	if err == nil {
		t.Fatal("serve started on a URL that does not parse")
	}
	for _, secret := range []string{urlPass, urlUser} {
		if strings.Contains(err.Error(), secret) || strings.Contains(stderr.String(), secret) {
			t.Errorf("start-up error shows %q: %v\n%s", secret, err, stderr.String())
		}
	}
}

// A remote that takes connections and never answers used to hold the start for
// ever (the first fetch had no bound). Now serve listens after one bounded probe,
// is not ready, and heals once the remote answers.
func TestStartWithABlackHoledRemote(t *testing.T) {
	rm := newGitRemote(t, "", "")
	rm.set("hang")
	rm.up()
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", t.TempDir(), "--fleet-url", rm.url(""))
	p := unavailable(t, "/readyz, black-holed remote", s.do("GET", "/readyz", ""))
	if d, _ := p["detail"].(string); !strings.HasPrefix(d, "remote unreachable") {
		t.Errorf("/readyz detail %q, want remote unreachable", d)
	}
	unavailable(t, "create, black-holed remote", s.do("POST", "/api/v1/stores", storeBody("alpha")))
	rm.set("")
	s.await("/readyz", http.StatusOK, "")
	if r := s.do("POST", "/api/v1/stores", storeBody("alpha")); r.status != http.StatusAccepted {
		t.Fatalf("create once the remote answered: %d %s", r.status, r.body)
	}
}
