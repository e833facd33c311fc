package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/githttp"
)

// Writable tells, without a push, whether a write would land now.
func TestWritable(t *testing.T) {
	ctx := context.Background()
	t.Run("local remote", func(t *testing.T) {
		rm := newRemote(t, "path")
		var logs lockedBuf
		r := open(t, rm, withLog(&logs), func(o *Options) { o.Dir = filepath.Join(t.TempDir(), "clone.git") })
		head := remoteHead(t, rm)
		if err := r.Writable(ctx); err != nil {
			t.Fatalf("Writable: %v", err)
		}
		if remoteHead(t, rm) != head {
			t.Fatal("Writable moved the branch")
		}

		// A lock that may be git's, mid-update: not writable now.
		lock := lockPath(rm)
		if err := os.WriteFile(lock, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.Writable(ctx); err == nil || !strings.Contains(err.Error(), lock) {
			t.Errorf("Writable under a young foreign lock: %v", err)
		}
		// A dead writer's lock: cleared, so writable.
		if err := os.WriteFile(lock, []byte(lockMarker+" pid=4242\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.Writable(ctx); err != nil {
			t.Errorf("Writable with a dead writer's lock: %v", err)
		}
		if _, err := os.Stat(lock); !os.IsNotExist(err) || !strings.Contains(logs.String(), lock) {
			t.Errorf("dead writer's lock not cleared with a warning: %v\n%s", err, logs.String())
		}

		// A clone that lost its tip behind the writer's back.
		res := mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-shop")))
		// Merged first: until then the writer holds its own recent objects in
		// memory too, and the merge would write them back (recent.go).
		if err := r.mergeRecentNow(); err != nil {
			t.Fatal(err)
		}
		removePack(t, r.opts.Dir, res.Commit)
		if err := r.Writable(ctx); !errors.Is(err, ErrStorage) {
			t.Errorf("Writable with the tip gone from the clone: %v", err)
		}

		r.Close()
		if err := r.Writable(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Writable after Close: %v", err)
		}
	})
	t.Run("remote gone", func(t *testing.T) {
		srv, url := serveFleet(t, "", "")
		r := open(t, remote{url: url})
		if err := r.Writable(ctx); err != nil {
			t.Fatalf("Writable: %v", err)
		}
		srv.Close()
		if err := r.Writable(ctx); err == nil {
			t.Error("Writable with the remote gone")
		}
	})
}

// serveFleet serves a seeded fleet over HTTP, with basic auth if user is set.
func serveFleet(t *testing.T, user, pass string) (*githttp.Server, string) {
	t.Helper()
	srv, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv.Username, srv.Password = user, pass
	bare, err := srv.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Seed(context.Background(), bare, "main", skeleton, Signature{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, srv.URL() + "/fleet.git"
}
