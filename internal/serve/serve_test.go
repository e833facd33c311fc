package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/serve"
)

// buildBinary builds cmd/gitops-api once per test run.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gitops-api-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "gitops-api")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/storefleet/storefleet/cmd/gitops-api")
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

// start runs `gitops-api serve` and waits until it listens.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--internal-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	cmd.Stderr = &syncWriter{w: logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "gitops-api listening on "); ok {
				lines <- u
			}
		}
		close(lines)
	}()
	select {
	case u, ok := <-lines:
		if !ok {
			t.Fatalf("gitops-api exited before listening:\n%s", logs)
		}
		return &proc{cmd: cmd, url: u, logs: logs}
	case <-time.After(60 * time.Second):
		t.Fatalf("gitops-api did not listen within 60s:\n%s", logs)
	}
	return nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func create(client *http.Client, base, name, key string) (int, error) {
	body := fmt.Sprintf(`{"name":%q,"engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`, name)
	req, _ := http.NewRequest("POST", base+"/api/v1/stores", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// storesIn lists the store names at the remote's main.
func storesIn(t *testing.T, bare string) map[string]bool {
	out := gitOut(t, bare, "ls-tree", "-d", "-r", "--name-only", "main", "stores/local")
	got := map[string]bool{}
	for _, d := range strings.Fields(out) {
		if strings.Count(d, "/") == 3 {
			got[d[strings.LastIndex(d, "/")+1:]] = true
		}
	}
	return got
}

// A gitops-api process killed with SIGKILL in the middle of 100 concurrent creates
// loses none that it acknowledged; restarted on the same data dir, retries with the
// same Idempotency-Keys complete the rest without duplicates.
func TestSIGKILLDuringLoadLosesNoAcknowledgedCreate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("this test needs Linux (SIGKILL semantics); running on %s", runtime.GOOS)
	}
	bin := buildBinary(t)
	remote, bare := githttp.ServeFleet(t)
	data := t.TempDir()

	p := start(t, bin, "--fleet-url", remote, "--data-dir", data)
	client := &http.Client{Timeout: 30 * time.Second}
	const n = 100
	var (
		acked   sync.Map
		nAcked  atomic.Int32
		killed  atomic.Bool
		wg      sync.WaitGroup
		killAt  = int32(25)
		killErr error
		once    sync.Once
	)
	kill := func() {
		once.Do(func() {
			killed.Store(true)
			killErr = p.cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the requests so the kill falls between commits, not after all.
			time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
			name := fmt.Sprintf("k-%03d", i)
			st, err := create(client, p.url, name, "key-"+name)
			if err == nil && st == http.StatusAccepted {
				acked.Store(name, true)
				if nAcked.Add(1) == killAt {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	kill()
	if killErr != nil {
		t.Fatalf("SIGKILL: %v", killErr)
	}
	_ = p.cmd.Wait()
	got := int(nAcked.Load())
	if got == 0 || got == n {
		t.Fatalf("%d of %d creates were acknowledged before the kill; the kill did not land during the load", got, n)
	}
	present := storesIn(t, bare)
	acked.Range(func(k, _ any) bool {
		if !present[k.(string)] {
			t.Errorf("store %s got a 202 but is not in the fleet repository", k)
		}
		return true
	})
	t.Logf("killed after %d acknowledged creates; %d stores in the fleet repository", got, len(present))

	// Restart on the same data dir (the on-disk clone and request log survive the kill)
	// and retry every create with its key.
	p2 := start(t, bin, "--fleet-url", remote, "--data-dir", data)
	for i := range n {
		name := fmt.Sprintf("k-%03d", i)
		st, err := create(client, p2.url, name, "key-"+name)
		if err != nil || st != http.StatusAccepted {
			t.Fatalf("retry of %s after restart: %d %v\n%s", name, st, err, p2.logs)
		}
	}
	present = storesIn(t, bare)
	if len(present) != n {
		t.Fatalf("%d stores after retries, want %d", len(present), n)
	}
	trailers := strings.Fields(gitOut(t, bare, "log", "--format=%(trailers:key=Store,valueonly,separator=%x20)", "main"))
	count := map[string]int{}
	for _, s := range trailers {
		count[s]++
	}
	for i := range n {
		if name := fmt.Sprintf("k-%03d", i); count[name] != 1 {
			t.Errorf("store %s was committed %d times", name, count[name])
		}
	}
	gitOut(t, bare, "fsck", "--strict", "--no-dangling")
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	if err := p2.cmd.Wait(); err != nil {
		t.Fatalf("gitops-api did not exit cleanly on SIGTERM: %v\n%s", err, p2.logs)
	}
}

// The embedded default: no --fleet-url, a bare repository seeded from fleet/ in the
// data dir, reused on the next start.
func TestEmbeddedDefault(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &bytes.Buffer{}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", data, "--seed-dir", "../../fleet"},
			func(string) string { return "" }, pw, out)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "gitops-api listening on "); ok {
			url = u
			break
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("serve did not start: %v\n%s", <-done, out)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	st, err := create(http.DefaultClient, url, "embedded", "e-1")
	if err != nil || st != http.StatusAccepted {
		t.Fatalf("create: %d %v\n%s", st, err, out)
	}
	bare := filepath.Join(data, "fleet.git")
	if !storesIn(t, bare)["embedded"] {
		t.Fatal("store not in the embedded fleet repository")
	}
	if _, err := os.Stat(filepath.Join("../../fleet", "README.md")); err == nil {
		if gitOut(t, bare, "cat-file", "-t", "main:README.md") != "blob" {
			t.Fatal("embedded repository not seeded from fleet/")
		}
	}
	res, err := http.Get(url + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", res, err)
	}
	var h map[string]string
	_ = json.NewDecoder(res.Body).Decode(&h)
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
}

// A mistake in serve's configuration stops it before its first side effect: the
// data dir, where the embedded fleet repository is seeded and the clone made, is
// never created. Each option here used to be checked only after both.
func TestBadConfigurationCreatesNothing(t *testing.T) {
	for _, bad := range [][]string{
		{"--chart-source", "git"},
		{"--medusa-image", "medusa"},
		{"--medusa-image", "ghcr.io/acme/medusa@sha256:0123"},
		{"--chart-source", "oci"}, // without --chart-oci-url
		{"--chart-repository", "Storefleet Charts"},
		{"--base-domain", "shops_acme.com"},
		{"--cluster", "EU West"},
		{"--store-ingress-namespace", "ingress.nginx"},
		{"--listen", "8080"},
		{"--artifact-url", "storefleet-api:8080"},
		{"--artifacts-listen", "9091"},
		{"--artifacts-listen", "127.0.0.1:artifacts"},
		{"--kubeconfig", "/nonexistent/kubeconfig"},
	} {
		t.Run(strings.Join(bad, "="), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", data, "--seed-dir", "../../fleet"}, bad...)
			err := serve.Run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
			var ue *serve.UsageError
			if !errors.As(err, &ue) {
				t.Errorf("want a *serve.UsageError, got %T %v", err, err)
			} else if !strings.Contains(err.Error(), bad[0]) {
				t.Errorf("the error does not name %s: %v", bad[0], err)
			}
			if entries, err := os.ReadDir(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("serve created its data dir before it refused the configuration: %v %v", entries, err)
			}
		})
	}
}
