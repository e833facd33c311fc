package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the gitops-api binary TestMain builds once for every test; root is the
// module root (the processes run there, so the default --seed-dir fleet and
// --chart-versions charts resolve as they do for `make run`).
var bin, root string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if root, err = filepath.Abs("../.."); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		dir, err := os.MkdirTemp("", "faults-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "gitops-api")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/gitops-api")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build gitops-api: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// proc is one gitops-api process.
type proc struct {
	cmd     *exec.Cmd
	url     string
	logs    *lockedBuf
	started time.Time // when it was executed
	done    chan struct{}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail is the end of the log, enough to say why a test failed.
func (l *lockedBuf) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 6000 {
		s = "…" + s[len(s)-6000:]
	}
	return s
}

// start runs `gitops-api serve` on a loopback port and waits until it listens.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{logs: &lockedBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Dir = root
	p.cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.logs
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "gitops-api listening on "); ok {
				lines <- u
			}
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u, ok := <-lines:
		if !ok {
			<-p.done
			t.Fatalf("gitops-api %v exited before listening: %v\n%s", args, p.cmd.ProcessState, p.logs.tail())
		}
		p.url = u
		return p
	case <-time.After(2 * time.Minute):
		t.Fatalf("gitops-api did not listen within 2m (liveness bound):\n%s", p.logs.tail())
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks for a clean shutdown (SIGTERM) and reports how it exited.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if !p.cmd.ProcessState.Success() {
			t.Errorf("gitops-api did not exit cleanly on SIGTERM: %v\n%s", p.cmd.ProcessState, p.logs.tail())
		}
	case <-time.After(time.Minute):
		p.kill()
		t.Errorf("gitops-api did not exit within 1m of SIGTERM:\n%s", p.logs.tail())
	}
}

// answer is one HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (a answer) json() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.body, &m)
	return m
}

func (a answer) str(key string) string {
	s, _ := a.json()[key].(string)
	return s
}

func (a answer) String() string {
	return fmt.Sprintf("%d after %v: %s", a.status, a.took.Round(time.Millisecond), bytes.TrimSpace(a.body))
}

// do sends one request; key, when set, is its Idempotency-Key (and so its Request-Id).
func do(client *http.Client, method, url, key, contentType, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	t0 := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return answer{took: time.Since(t0)}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b, took: time.Since(t0)}, err
}

func createBody(name string) string {
	return fmt.Sprintf(`{"name":%q,"engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`, name)
}

// checkUnavailable checks what every 503 of the API must carry: problem+json and a
// Retry-After.
func checkUnavailable(t *testing.T, what string, a answer) {
	t.Helper()
	if a.header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After: %v", what, a)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s: 503 as %q, want application/problem+json: %v", what, ct, a)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// requestIDs counts the Request-Id trailers on the branch's history: the id of every
// change that landed, once per commit that carries it.
func requestIDs(t *testing.T, bare string) map[string]int {
	t.Helper()
	out := git(t, bare, "log", "--format=%(trailers:key=Request-Id,valueonly,separator=%x20)", "main")
	got := map[string]int{}
	for _, id := range strings.Fields(out) {
		got[id]++
	}
	return got
}

// fsck runs git fsck --strict on every repository under dirs (the fleet repository,
// the writer's clone) and fails on any finding; it returns how many repositories it
// checked and how many failed.
func fsck(t *testing.T, dirs ...string) (n, failed int) {
	t.Helper()
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if _, err := os.Stat(filepath.Join(path, "HEAD")); err != nil {
				return nil
			}
			if _, err := os.Stat(filepath.Join(path, "objects")); err != nil {
				return nil
			}
			cmd := exec.Command("git", "fsck", "--strict", "--no-dangling", "--no-progress")
			cmd.Dir = path
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("git fsck --strict %s: %v\n%s", path, err, out)
				failed++
			}
			n++
			return filepath.SkipDir
		})
	}
	if n == 0 {
		t.Errorf("no repository under %v to fsck", dirs)
	}
	return n, failed
}

// quantile of sorted-on-demand durations, q in [0,1].
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1)+0.5)]
}
