package githttp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// ErrNoBackend means git's http-backend program could not be found; it ships with the
// git package (Debian: /usr/lib/git-core/git-http-backend).
var ErrNoBackend = errors.New("githttp: git http-backend not found (install git)")

// Server serves every bare repository under Root at http://127.0.0.1:PORT/<name>.git.
type Server struct {
	Root string

	// Username and Password, when set, are required as HTTP basic auth on every
	// request, so clients' credential handling is exercised too.
	Username, Password string

	// Log receives git's stderr; nil discards it. It is never handed to git as a
	// file: a git process that outlived its request would otherwise hold the
	// caller's stderr open (go test then waits for it, "Test I/O incomplete").
	Log io.Writer

	ln      net.Listener
	srv     *http.Server
	handler http.Handler
	wg      sync.WaitGroup
	// serving is held shared by every request and exclusively by Exclusive.
	serving sync.RWMutex
}

// Exclusive runs f while no request is being served: it waits for the requests in
// flight (a push whose client died may still be moving its objects in, and
// receive-pack's automatic gc runs inside the request) and holds new ones until f
// returns. Tests use it to read the repositories as git left them, e.g. git fsck,
// which reports objects a concurrent repack deleted under it as missing.
func (s *Server) Exclusive(f func()) {
	s.serving.Lock()
	defer s.serving.Unlock()
	f()
}

// BackendPath returns the path of git-http-backend, as reported by git itself.
func BackendPath() (string, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBackend, err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBackend, err)
	}
	return p, nil
}

// New returns a server for the bare repositories under root. Call Start to listen.
func New(root string) (*Server, error) {
	backend, err := BackendPath()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s := &Server{Root: abs}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + abs,
			"GIT_HTTP_EXPORT_ALL=1",
			// Pushes are anonymous to git-http-backend (no REMOTE_USER when auth is off);
			// receive-pack must be enabled explicitly for that.
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=http.receivepack",
			"GIT_CONFIG_VALUE_0=true",
			// receive-pack's automatic gc runs inside the request instead of as a
			// daemon that outlives it (and the server).
			"GIT_CONFIG_KEY_1=gc.autoDetach",
			"GIT_CONFIG_VALUE_1=false",
		},
		Stderr: logWriter{s},
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serving.RLock()
		defer s.serving.RUnlock()
		if s.Username != "" || s.Password != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != s.Username || p != s.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="fleet"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if r.ContentLength > 0 {
			if r.ContentLength > MaxBody {
				http.Error(w, fmt.Sprintf("request body of %d bytes is over the %d-byte limit", r.ContentLength, MaxBody), http.StatusRequestEntityTooLarge)
				return
			}
			body, err := readBody(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else if r.ContentLength < 0 {
			// git's client sends a push larger than its http.postBuffer (1 MiB) chunked,
			// and CGI has no way to pass a body of unknown length (net/http/cgi answers
			// 400). Read it whole and hand git a body of known length instead.
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
			if err != nil {
				http.Error(w, fmt.Sprintf("reading a chunked request body: %v", err), http.StatusBadRequest)
				return
			}
			if len(body) > MaxBody {
				http.Error(w, fmt.Sprintf("chunked request body over the %d-byte limit", MaxBody), http.StatusRequestEntityTooLarge)
				return
			}
			r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
		}
		cgiHandler.ServeHTTP(w, r)
	})
	return s, nil
}

// MaxBody bounds a request body with a Content-Length (pushes of a fleet are small;
// a push of 10,000 new stores is a few MB).
const MaxBody = 512 << 20

// readBody reads a body with a Content-Length whole before git starts. git
// 2.39's http-backend copies such a body with a loop that does not stop at end of
// file (pipe_fixed_length): a client that dies mid-push leaves it spinning on a
// core for ever, outliving the request and the server. Reading it first means git
// only ever gets a body as long as it was announced.
func readBody(r *http.Request) ([]byte, error) {
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, fmt.Errorf("request body ended before its Content-Length (%d bytes): %w", r.ContentLength, err)
	}
	return body, nil
}

// logWriter forwards to Server.Log. Being no *os.File, it makes exec give git a pipe.
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	if w.s.Log == nil {
		return len(p), nil
	}
	return w.s.Log.Write(p)
}

// Handler returns the HTTP handler, for callers that run their own listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on a free loopback port.
func (s *Server) Start() error {
	return s.StartAt("127.0.0.1:0")
}

// StartAt listens on addr, which must be a loopback address.
func (s *Server) StartAt(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	return nil
}

// URL returns the base URL; a repository "fleet.git" under Root is at URL()+"/fleet.git".
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the server.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// InitBare creates an empty bare repository named name (e.g. "fleet.git") under Root,
// with main as its default branch, and returns its path.
func (s *Server) InitBare(name string) (string, error) {
	p := filepath.Join(s.Root, name)
	cmd := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", p)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git init --bare %s: %v: %s", p, err, out)
	}
	return p, nil
}
