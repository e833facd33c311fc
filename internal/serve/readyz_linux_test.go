package serve_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testfs"
)

// mount runs mount(2), failing the test where it cannot (no root or CAP_SYS_ADMIN)
// unless GITREPO_SKIP_TMPFS is set, as the gitrepo full-disk tests do.
func mount(t *testing.T, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if err := syscall.Mount(source, target, fstype, flags, data); err != nil {
		if os.Getenv("GITREPO_SKIP_TMPFS") != "" {
			t.Skipf("mount %s: %v (GITREPO_SKIP_TMPFS is set)", target, err)
		}
		t.Fatalf("mount %s on %s: %v: this test needs root or CAP_SYS_ADMIN; set GITREPO_SKIP_TMPFS=1 to skip it", source, target, err)
	}
}

// readOnly makes dir read-only (a read-only bind mount over it: root ignores file
// modes) until the returned function undoes it.
func readOnly(t *testing.T, dir string) func() {
	t.Helper()
	mount(t, dir, dir, "", syscall.MS_BIND, "")
	mounted := true
	undo := func() {
		if mounted {
			mounted = false
			if err := syscall.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
				_ = syscall.Unmount(dir, syscall.MNT_DETACH)
			}
		}
	}
	t.Cleanup(undo)
	mount(t, "", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
	return undo
}

// /readyz used to stay 200 while the embedded fleet repository could not be written:
// a ref lock left by git, an objects folder that takes no writes, a full disk. Each
// now makes it 503 + Retry-After naming the cause, with no path in the body (the full
// detail is in the log), and each heals without a restart once the fault is gone;
// /healthz stays 200 throughout.
func TestReadyzFailsWhileTheFleetCannotBeWritten(t *testing.T) {
	// The data dir on a small filesystem of its own, so it can be filled.
	data := t.TempDir()
	mount(t, "tmpfs", data, "tmpfs", 0, "size=16m")
	t.Cleanup(func() {
		if err := syscall.Unmount(data, 0); err != nil {
			_ = syscall.Unmount(data, syscall.MNT_DETACH)
		}
	})
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", data, "--seed-dir", "../../fleet")
	s.await("/readyz", http.StatusOK, "")
	if r := s.do("POST", "/api/v1/stores", storeBody("alpha")); r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	bare := filepath.Join(data, "fleet.git")
	lock := filepath.Join(bare, "refs", "heads", "main.lock")

	notReady := func(what, cause string) {
		t.Helper()
		r := s.await("/readyz", http.StatusServiceUnavailable, cause)
		p := unavailable(t, "/readyz, "+what, r)
		if d, _ := p["detail"].(string); !strings.HasPrefix(d, cause) {
			t.Errorf("/readyz, %s: detail %q does not begin with the cause %q", what, d, cause)
		}
		if strings.Contains(string(r.body), data) {
			t.Errorf("/readyz, %s: the body shows a path: %s", what, r.body)
		}
		if h := s.do("GET", "/healthz", ""); h.status != http.StatusOK {
			t.Errorf("/healthz, %s: %d, want 200", what, h.status)
		}
	}

	// A ref lock: a lock as git leaves it when killed mid-update: no mark of ours, so it may be
	// a live git's until it is old.
	if err := os.WriteFile(lock, []byte("0123456789abcdef0123456789abcdef01234567\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notReady("a young ref lock", "ref lock held")
	if !strings.Contains(s.err.String(), lock) {
		t.Errorf("the log does not name the lock %s", lock)
	}
	// Old enough to be stale: taken over, ready again by itself.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	s.await("/readyz", http.StatusOK, "")
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("the stale lock is still there: %v", err)
	}

	// An objects folder that takes no writes.
	undo := readOnly(t, filepath.Join(bare, "objects"))
	notReady("objects folder read-only", "storage not permitted")
	undo()
	s.await("/readyz", http.StatusOK, "")

	// A full disk.
	free := testfs.Fill(t, data)
	notReady("disk full", "storage full")
	free()
	s.await("/readyz", http.StatusOK, "")

	if r := s.do("POST", "/api/v1/stores", storeBody("beta")); r.status != http.StatusAccepted {
		t.Fatalf("create after the faults: %d %s", r.status, r.body)
	}
}
