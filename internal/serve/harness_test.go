package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/serve"
)

// transcript is everything a process showed: its stdout and stderr, and every
// response it gave (status line, headers, body), so a test can look for a secret in
// all of it at once.
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *transcript) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Write(b)
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// mustNotShow fails the test for every secret (and its URL-escaped forms) the
// transcript holds.
func (t *transcript) mustNotShow(tb testing.TB, secrets ...string) {
	tb.Helper()
	text := t.String()
	for _, s := range secrets {
		for _, form := range []string{s, strings.ReplaceAll(s, "-", "%2D")} {
			if i := strings.Index(text, form); i >= 0 {
				tb.Errorf("%q shows in the output:\n…%s…", s, text[max(0, i-300):min(len(text), i+100)])
			}
		}
	}
}

// served is one serve.Run in this process, its stdout and stderr captured.
type served struct {
	t        *testing.T
	url      string
	out, err *transcript // stdout, stderr
	all      *transcript // both, and every response
	cancel   func()
	done     chan error
}

// runServe runs serve.Run with args and the variables in env, and waits until it
// listens. all receives its output and every response of do.
func runServe(t *testing.T, all *transcript, env map[string]string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{t: t, out: &transcript{}, err: &transcript{}, all: all, cancel: cancel, done: make(chan error, 1)}
	args = append([]string{"--listen", "127.0.0.1:0", "--internal-listen", "127.0.0.1:0", "--chart-versions", "none"}, args...)
	go func() {
		s.done <- serve.Run(ctx, args, func(k string) string { return env[k] },
			io.MultiWriter(s.out, all), io.MultiWriter(s.err, all))
	}()
	// Polled, not timed: the bound only keeps a broken start from hanging the test.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(s.out.String(), "\n") {
			if u, ok := strings.CutPrefix(line, "gitops-api listening on "); ok {
				s.url = u
				t.Cleanup(s.stop)
				return s
			}
		}
		select {
		case err := <-s.done:
			cancel()
			t.Fatalf("serve returned before listening: %v\n%s", err, s.err)
		default:
		}
	}
	cancel()
	t.Fatalf("serve did not listen:\n%s", s.err)
	return nil
}

// stop shuts serve down and checks that it returned no error.
func (s *served) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		s.t.Errorf("serve returned %v", err)
	}
}

// response is one answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r.body)
	}
	return p
}

var apiClient = &http.Client{Timeout: 60 * time.Second}

// do sends a request and records the whole answer in the transcript.
func (s *served) do(method, path, body string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := apiClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	var h bytes.Buffer
	_ = res.Header.Write(&h)
	fmt.Fprintf(s.all, "%s %s -> %s\n%s\n%s\n", method, path, res.Status, h.String(), b)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// await asks GET path until it answers want (and, if set, its body holds text), and
// returns that answer. A condition, not a time: the bound only keeps a broken fix from
// hanging the test.
func (s *served) await(path string, want int, text string) response {
	s.t.Helper()
	var last response
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		last = s.do("GET", path, "")
		if last.status == want && strings.Contains(string(last.body), text) {
			return last
		}
	}
	s.t.Fatalf("GET %s never answered %d with %q; last %d %s\nlogs:\n%s", path, want, text, last.status, last.body, s.err)
	return last
}

func storeBody(name string) string {
	return fmt.Sprintf(`{"name":%q,"engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`, name)
}

// unavailable checks a 503 that says to come back: Retry-After, problem+json.
func unavailable(t *testing.T, what string, r response) map[string]any {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("%s: %d, want 503: %s", what, r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", what)
	}
	return r.problem(t)
}

// gitRemote is the fleet repository behind a real git server (git http-backend on
// loopback) that a test can take down, bring back on the same address, or make
// answer like a broken one: 403, 500, or never (a black hole).
type gitRemote struct {
	t    *testing.T
	git  *githttp.Server
	bare string
	addr string
	mode atomic.Value // "", "403", "500" or "hang"
	hits atomic.Int64 // requests received
	hung chan struct{}

	mu  sync.Mutex
	srv *http.Server
}

func newGitRemote(t *testing.T, user, pass string) *gitRemote {
	t.Helper()
	g, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g.Username, g.Password = user, pass
	bare, err := g.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	r := &gitRemote{t: t, git: g, bare: bare, addr: "127.0.0.1:0", hung: make(chan struct{})}
	r.mode.Store("")
	t.Cleanup(func() { close(r.hung); r.down() })
	return r
}

func (r *gitRemote) set(mode string) { r.mode.Store(mode) }

func (r *gitRemote) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	switch r.mode.Load().(string) {
	case "403":
		http.Error(w, "forbidden", http.StatusForbidden)
	case "500":
		http.Error(w, "internal error", http.StatusInternalServerError)
	case "hang":
		select {
		case <-req.Context().Done():
		case <-r.hung:
		}
	default:
		r.git.Handler().ServeHTTP(w, req)
	}
}

// up listens (on the address it had before, once it had one).
func (r *gitRemote) up() {
	r.t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: r}
	go func() { _ = srv.Serve(ln) }()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

// down closes the listener and every connection: the address refuses connections.
func (r *gitRemote) down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

// url is the repository's URL with userinfo in it ("" for none).
func (r *gitRemote) url(userinfo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return "http://" + userinfo + r.addr + "/fleet.git"
}
