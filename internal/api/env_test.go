package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// env is the API over real HTTP on loopback, writing to a fleet repository served
// by git http-backend on loopback.
type env struct {
	t      *testing.T
	api    *httptest.Server
	bare   string // the remote's bare repository on disk, for inspecting with git
	remote string
	spec   *spec
	// opts are the handler's options beyond the log (authentication, limits, status).
	opts api.Options
	svc  *fleet.Service
	// wrap, when set, decorates the fleet service the handler is given (the access
	// policy, as serve wires it).
	wrap func(*fleet.Service) api.Service
}

func newEnv(t *testing.T) *env { return newEnvWith(t, api.Options{}) }

// newEnvWith is newEnv with the handler's options.
func newEnvWith(t *testing.T, opts api.Options) *env {
	t.Helper()
	return newEnvWrapped(t, opts, nil)
}

// newEnvWrapped is newEnvWith with the fleet service decorated by wrap.
func newEnvWrapped(t *testing.T, opts api.Options, wrap func(*fleet.Service) api.Service) *env {
	t.Helper()
	git, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatalf("git http-backend is needed for these tests: %v", err)
	}
	bare, err := git.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if err := git.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { git.Close() })
	e := &env{t: t, bare: bare, remote: git.URL() + "/fleet.git", spec: loadSpec(t), opts: opts, wrap: wrap}
	// Seed the remote like a real fleet repository: one commit holding the layout.
	seed := t.TempDir()
	runGit(t, seed, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte("fleet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, seed, "add", ".")
	runGit(t, seed, "commit", "-q", "-m", "seed")
	runGit(t, seed, "push", "-q", e.remote, "main")

	e.start()
	return e
}

// start (re)starts the API process's parts on the same remote: a new clone, a new
// service reading the index from Git, a new HTTP server.
func (e *env) start() {
	t := e.t
	t.Helper()
	if e.api != nil {
		e.api.Close()
	}
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: e.remote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	svc, err := fleet.New(ctx, fleet.Config{
		Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()},
		Log: log, RequestLog: filepath.Join(t.TempDir(), "requests.jsonl"),
		// The repository's charts, as the local environment's HelmRepository offers them.
		Charts: chartindex.Dir{Path: filepath.Join("..", "..", "charts")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	e.svc = svc
	o := e.opts
	o.Log = log
	if o.Diffs == nil {
		o.Diffs = fleet.Differ{R: gitrepo.Fleet{R: repo}}
	}
	var hs api.Service = svc
	if e.wrap != nil {
		hs = e.wrap(svc)
	}
	srv := httptest.NewServer(api.Handler(hs, o))
	t.Cleanup(srv.Close)
	e.api = srv
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// git runs git against the remote's bare repository.
func (e *env) git(args ...string) string {
	e.t.Helper()
	return runGit(e.t, e.bare, args...)
}

func (e *env) commits() int {
	e.t.Helper()
	n, err := strconv.Atoi(e.git("rev-list", "--count", "main"))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// file returns a file at the remote's main, and whether it exists.
func (e *env) file(path string) (string, bool) {
	cmd := exec.Command("git", "show", "main:"+path)
	cmd.Dir = e.bare
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return string(out), true
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request and checks the response against the OpenAPI document.
func (e *env) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.api.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.api.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	p := path
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	e.spec.check(e.t, method, p, res.StatusCode, res.Header, b)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) expect(r response, status int) map[string]any {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r.json(e.t)
}

func shop(name string) map[string]any {
	return map[string]any{
		"name": name, "engine": "woocommerce", "plan": "basic",
		"settings": map[string]any{"title": "Shop " + name, "adminEmail": "owner@example.com", "currency": "EUR", "country": "DE"},
	}
}

func storeDir(name string) string { return store.Dir("local", name) }
