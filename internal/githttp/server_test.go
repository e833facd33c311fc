package githttp

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func git(t *testing.T, dir string, args ...string) string {
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

// startFleet serves a new bare fleet.git until the test ends.
func startFleet(t *testing.T) *Server {
	t.Helper()
	srv, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.InitBare("fleet.git"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func TestPushAndCloneOverHTTP(t *testing.T) {
	srv := startFleet(t)
	url := srv.URL() + "/fleet.git"

	work := t.TempDir()
	git(t, work, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(work, "a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "first")
	git(t, work, "push", "-q", url, "main")
	want := git(t, work, "rev-parse", "HEAD")

	clone := filepath.Join(t.TempDir(), "c")
	git(t, t.TempDir(), "clone", "-q", url, clone)
	if got := git(t, clone, "rev-parse", "HEAD"); got != want {
		t.Fatalf("cloned HEAD %s, pushed %s", got, want)
	}
}

// TestChunkedPush pushes more than git's post buffer, which git then sends with
// chunked transfer encoding (a bulk import of thousands of stores by hand does).
func TestChunkedPush(t *testing.T) {
	srv := startFleet(t)
	url := srv.URL() + "/fleet.git"

	work := t.TempDir()
	git(t, work, "init", "-q", "-b", "main")
	for i := range 50 {
		// Incompressible enough that the pack is well over the 4 KiB buffer below.
		data := []byte(fmt.Sprintf("store %d %x\n", i, time.Now().UnixNano()*int64(i+7)))
		data = append(data, []byte(strings.Repeat(fmt.Sprintf("%d-%x ", i, i*7919), 40))...)
		if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("s%d.txt", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "many")
	git(t, work, "-c", "http.postBuffer=4096", "push", "-q", url, "main")
	want := git(t, work, "rev-parse", "HEAD")

	clone := filepath.Join(t.TempDir(), "c")
	git(t, t.TempDir(), "clone", "-q", url, clone)
	if got := git(t, clone, "rev-parse", "HEAD"); got != want {
		t.Fatalf("cloned HEAD %s, pushed %s", got, want)
	}
}

func TestBasicAuthRequired(t *testing.T) {
	srv, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv.Username, srv.Password = "fleet", "s3cret"
	if _, err := srv.InitBare("fleet.git"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	cmd := exec.Command("git", "ls-remote", srv.URL()+"/fleet.git")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("ls-remote without credentials succeeded:\n%s", out)
	}
	authed := strings.Replace(srv.URL(), "http://", "http://fleet:s3cret@", 1) + "/fleet.git"
	cmd = exec.Command("git", "ls-remote", authed)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ls-remote with credentials: %v\n%s", err, out)
	}
}

// git's stderr goes to Server.Log through a pipe: a git process that outlives its
// request must not hold the server process's own stderr (go test waits on it).
func TestGitStderrGoesToLog(t *testing.T) {
	srv, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	srv.Log = &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	res, err := http.Get(srv.URL() + "/missing.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d for a missing repository, want 404", res.StatusCode)
	}
	if !strings.Contains(log.String(), "missing.git") {
		t.Fatalf("git's complaint about missing.git did not reach Log: %q", log.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While Exclusive runs its function, no request is served: a fetch sent meanwhile is
// answered only after the function returned, and is answered then.
func TestExclusiveHoldsRequests(t *testing.T) {
	srv := startFleet(t)
	answered := make(chan error, 1)
	srv.Exclusive(func() {
		go func() {
			resp, err := http.Get(srv.URL() + "/fleet.git/info/refs?service=git-upload-pack")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			answered <- err
		}()
		select {
		case err := <-answered:
			t.Errorf("a request was answered during Exclusive (err %v)", err)
		case <-time.After(500 * time.Millisecond):
		}
	})
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("the held request, once released: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held request was never answered after Exclusive returned")
	}
}
