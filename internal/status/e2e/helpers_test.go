package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/serve"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// gitopsAPI is `gitops-api serve` running in this process against the environment.
type gitopsAPI struct {
	URL  string
	addr string // host:port it listens on; a restart listens there again
	stop func() error
}

var (
	apiDataDir string // removed by TestMain
	apiMu      sync.Mutex
	api        *gitopsAPI
	apiErr     error
	apiStarts  int
	// apiArtifacts is where gitops-api serves the shard artifacts, the same for
	// every start: the artifacts' URLs name it.
	apiArtifacts string
	// apiMetrics is gitops-api's internal listener (/metrics), the same for every
	// start.
	apiMetrics string
	// apiKubeconfig is the kubeconfig the next start uses ("" = the environment's):
	// a test may put a proxy of its own between gitops-api and the API server.
	apiKubeconfig string
)

// startAPI returns the package's gitops-api, started on first use, pointed at the
// environment's fleet repository and cluster. Only restartAPI restarts it, never
// while another test runs: the API-server restart test relies on that.
func startAPI(t testing.TB) *gitopsAPI {
	t.Helper()
	apiMu.Lock()
	defer apiMu.Unlock()
	if api == nil && apiErr == nil && apiDataDir == "" {
		apiDataDir, apiErr = os.MkdirTemp("", "storefleet-status-api-")
	}
	if api == nil && apiErr == nil && apiArtifacts == "" {
		apiArtifacts, apiErr = freeAddr()
	}
	if api == nil && apiErr == nil && apiMetrics == "" {
		apiMetrics, apiErr = freeAddr()
	}
	if api == nil && apiErr == nil {
		api, apiErr = launchAPI("127.0.0.1:0")
	}
	if apiErr != nil {
		t.Fatalf("gitops-api did not start: %v", apiErr)
	}
	return api
}

// restartAPI stops the package's gitops-api, calls between while none runs, and
// starts a new one on the same data directory and addresses (so the artifact URLs it
// published stay valid and it adopts them), as an operator's restart would. between
// gets the artifacts' address.
func restartAPI(t testing.TB, between func(artifactsAddr string)) *gitopsAPI {
	t.Helper()
	old := startAPI(t)
	apiMu.Lock()
	defer apiMu.Unlock()
	if err := old.stop(); err != nil {
		t.Logf("gitops-api stopped: %v", err)
	}
	api = nil
	between(apiArtifacts)
	api, apiErr = launchAPI(old.addr)
	if apiErr != nil {
		t.Fatalf("gitops-api did not start again: %v", apiErr)
	}
	return api
}

// freeAddr is a loopback address no one listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// launchAPI runs serve.Run until stop, logging to gitops-api.log (then
// gitops-api.<n>.log for each restart).
func launchAPI(listen string) (*gitopsAPI, error) {
	name := "gitops-api.log"
	if apiStarts > 0 {
		name = fmt.Sprintf("gitops-api.%d.log", apiStarts)
	}
	apiStarts++
	kubeconfig := env.Kubeconfig
	if apiKubeconfig != "" {
		kubeconfig = apiKubeconfig
	}
	return launchServe(env, listen, apiDataDir, apiArtifacts, apiMetrics, name, "--kubeconfig", kubeconfig)
}

// launchServe runs serve.Run against environment e until stop, logging to
// e.LogDir/logName; extra flags follow the package's own (a later --kubeconfig
// wins over e's).
func launchServe(e *testenv.Env, listen, dataDir, artifacts, metrics, logName string, extra ...string) (*gitopsAPI, error) {
	args := []string{
		"--listen", listen, "--data-dir", dataDir, "--fleet-url", e.FleetURL,
		"--kubeconfig", e.Kubeconfig, "--artifacts-listen", artifacts, "--internal-listen", metrics,
		// clusters/local names the chart HelmRepository "storefleet"; its index
		// lists the versions these tests publish (0.1.0 to 0.1.3).
		"--chart-repository", "storefleet", "--chart-versions", e.ChartRepoURL + "/index.yaml",
		// Pushes made outside gitops-api (the benchmark's bulk seeding) are
		// published within seconds rather than the default 30 s.
		"--publish-interval", "2s",
		"--shutdown-grace", "5s",
		// The package's tests share one fleet and remove more stores in an hour
		// than the mass-deletion guard allows by default; the guard is not what
		// they test (internal/access and internal/api do).
		"--removals-per-hour", "10000",
	}
	return runServe(e, logName, append(args, extra...)...)
}

// runServe runs `gitops-api serve` with args in this process until stop, logging
// to logName in e's log folder.
func runServe(e *testenv.Env, logName string, args ...string) (*gitopsAPI, error) {
	logPath := filepath.Join(e.LogDir, logName)
	logF, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() {
		err := serve.Run(ctx, args, func(string) string { return "" }, pw, logF)
		exited <- err
		pw.CloseWithError(fmt.Errorf("gitops-api exited: %v (log %s)", err, logPath))
		logF.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		return nil, err
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "gitops-api listening on ")
	if !ok {
		cancel()
		return nil, fmt.Errorf("unexpected first line %q", line)
	}
	stop := func() error {
		cancel()
		return <-exited
	}
	return &gitopsAPI{URL: addr, addr: strings.TrimPrefix(addr, "http://"), stop: stop}, nil
}

func (a *gitopsAPI) do(t testing.TB, method, path string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	return out
}

// storeView is the part of GET /api/v1/stores/{name} these tests read.
type storeView struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Settings struct {
		Title string `json:"title"`
	} `json:"settings"`
	Status struct {
		Phase            string `json:"phase"`
		Reason           string `json:"reason"`
		Message          string `json:"message"`
		Percent          int    `json:"percent"`
		Generation       int64  `json:"generation"`
		ClusterConnected bool   `json:"clusterConnected"`
		Steps            []struct {
			Name  string     `json:"name"`
			State string     `json:"state"`
			Time  *time.Time `json:"time"`
		} `json:"steps"`
	} `json:"status"`
}

func (a *gitopsAPI) get(t testing.TB, name string) storeView {
	t.Helper()
	var v storeView
	if err := json.Unmarshal(a.do(t, http.MethodGet, "/api/v1/stores/"+name, nil, http.StatusOK), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID, Type string
	Data     []byte
}

func (e sseEvent) status(t testing.TB) status.Status {
	t.Helper()
	var s status.Status
	if err := json.Unmarshal(e.Data, &s); err != nil {
		t.Fatalf("event %s: %v: %s", e.ID, err, e.Data)
	}
	return s
}

// stream is an open event stream; events arrive on C, which is closed when the
// server ends the stream (Err then says why, nil for a clean end).
type stream struct {
	C      chan sseEvent
	Header http.Header
	cancel context.CancelFunc
	Err    error
}

func (a *gitopsAPI) events(t testing.TB, path, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	s := &stream{C: make(chan sseEvent, 4096), Header: resp.Header, cancel: cancel}
	t.Cleanup(s.Close)
	go func() {
		defer close(s.C)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Type != "" {
					s.C <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = append(ev.Data, line[6:]...)
			}
		}
		s.Err = sc.Err()
	}()
	return s
}

func (s *stream) Close() { s.cancel() }

// phases reads status events until the stream ends or timeout, returning the
// distinct phases in the order they came (repeats of the same phase folded) and
// the last status.
func (s *stream) phases(t testing.TB, timeout time.Duration, stopAt ...store.Phase) ([]store.Phase, status.Status, []status.KubeEvent) {
	t.Helper()
	return s.phasesOf(t, "", timeout, stopAt...)
}

// phasesOf is phases for one store of an all-stores stream ("" = every store): the
// package's tests share the cluster, so the stream also carries what other tests'
// stores still do (a purge finishing, a namespace going away).
func (s *stream) phasesOf(t testing.TB, name string, timeout time.Duration, stopAt ...store.Phase) ([]store.Phase, status.Status, []status.KubeEvent) {
	t.Helper()
	var seen []store.Phase
	var last status.Status
	var kube []status.KubeEvent
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.C:
			if !ok {
				return seen, last, kube
			}
			switch ev.Type {
			case "status":
				st := ev.status(t)
				if name != "" && st.Store != name {
					continue
				}
				last = st
				if len(seen) == 0 || seen[len(seen)-1] != last.Phase {
					seen = append(seen, last.Phase)
					t.Logf("%s: %s %s %s", last.Store, last.Phase, last.Reason, last.Message)
				}
				for _, p := range stopAt {
					if last.Phase == p {
						return seen, last, kube
					}
				}
			case "event":
				var k status.KubeEvent
				if err := json.Unmarshal(ev.Data, &k); err != nil {
					t.Fatal(err)
				}
				kube = append(kube, k)
			}
		case <-deadline:
			t.Fatalf("stream did not end within %s; phases so far %v, last %+v; component logs in %s", timeout, seen, last, env.LogDir)
		}
	}
}

// wantOrdered fails unless got is a subsequence of way that ends with way's last
// phase and contains every phase in must.
func wantOrdered(t *testing.T, got []store.Phase, way []store.Phase, must ...store.Phase) {
	t.Helper()
	i := 0
	for _, p := range got {
		for i < len(way) && way[i] != p {
			i++
		}
		if i == len(way) {
			t.Fatalf("phases %v are not in the order %v", got, way)
		}
	}
	if len(got) == 0 || got[len(got)-1] != way[len(way)-1] {
		t.Fatalf("phases %v do not end in %s", got, way[len(way)-1])
	}
	for _, m := range must {
		found := false
		for _, p := range got {
			found = found || p == m
		}
		if !found {
			t.Fatalf("phases %v lack %s", got, m)
		}
	}
}

// wantSteps fails unless every step of st is done, with times that never go back.
func wantSteps(t *testing.T, st status.Status, names ...string) {
	t.Helper()
	if len(st.Steps) != len(names) {
		t.Fatalf("steps %+v, want %v", st.Steps, names)
	}
	var prev time.Time
	for i, s := range st.Steps {
		if s.Name != names[i] || s.State != "done" || s.Time == nil || s.Time.Before(prev.Add(-time.Second)) {
			t.Fatalf("step %d %+v (previous at %v); want %s done", i, s, prev, names[i])
		}
		prev = *s.Time
	}
	if st.Percent != 100 {
		t.Fatalf("percent %d at %s", st.Percent, st.Phase)
	}
}
