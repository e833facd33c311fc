package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/storefleet/storefleet/internal/store"
)

// TestShallowFirstStart: a replica with no clone starts from the tip alone over HTTP
// (git http-backend; depth 1 here, so a short history has a boundary), reads and writes at once, answers "still loading" for any history
// that reaches behind its boundary (never a history cut there), and once the history
// has arrived answers exactly as a full clone does. On disk, a restart before the
// history arrived goes on fetching it.
func TestShallowFirstStart(t *testing.T) {
	for _, mode := range []string{"memory", "disk"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			rm := newRemote(t, "http")
			full := open(t, rm)
			mustOK(t, full.Submit(ctx, change("local", "old", ActionCreate, 1, "req-old-1")))
			mustOK(t, full.Submit(ctx, change("local", "old", ActionUpdate, 2, "req-old-2")))
			for _, n := range []string{"a", "b", "c"} {
				mustOK(t, full.Submit(ctx, change("local", n, ActionCreate, 1, "req-"+n)))
			}
			want, err := full.History(ctx, store.Dir("local", "old"), 0)
			if err != nil || len(want) != 2 {
				t.Fatalf("full clone's history: %v, %d commits", err, len(want))
			}

			// A history shorter than the first fetch's depth arrives whole.
			whole := open(t, rm)
			if !whole.historyComplete() || len(whole.shallowBoundary()) != 0 {
				t.Fatal("a 6-commit history started shallow; want it whole in the first fetch")
			}

			hold := make(chan struct{})
			dir := ""
			if mode == "disk" {
				dir = filepath.Join(t.TempDir(), "clone.git")
			}
			r := open(t, rm, func(o *Options) { o.Dir = dir; o.holdHistory = hold; o.shallowDepth = 1 })
			if r.historyComplete() {
				t.Fatal("a first start over HTTP fetched the whole history; want the tip alone")
			}
			if got := len(r.shallowBoundary()); got != 1 {
				t.Fatalf("shallow boundary: %d commits, want the tip", got)
			}
			// Reads of the tip are served.
			tree, files, err := r.Store(ctx, store.Dir("local", "old"))
			if err != nil || len(files) == 0 || tree == "" {
				t.Fatalf("Store at the shallow tip: %v, %d files", err, len(files))
			}
			// A history that reaches behind the boundary is not answered, nor cut.
			if _, err := r.History(ctx, store.Dir("local", "old"), 0); !errors.Is(err, ErrHistoryLoading) {
				t.Fatalf("History behind the boundary: %v, want ErrHistoryLoading", err)
			}
			_, err = Fleet{R: r}.History(ctx, store.Dir("local", "old"), store.HistoryPage{})
			if code := store.ErrorCode(err); code != store.EUNAVAILABLE {
				t.Fatalf("Fleet.History while loading: code %q (%v), want %q", code, err, store.EUNAVAILABLE)
			}
			if _, err := r.RemovalsSince(ctx, time.Now().Add(-time.Hour)); !errors.Is(err, ErrHistoryLoading) {
				t.Fatalf("RemovalsSince while loading: %v, want ErrHistoryLoading", err)
			}
			// Writes land on the real server from the shallow clone.
			before := remoteHead(t, rm)
			res := mustOK(t, r.Submit(ctx, change("local", "new", ActionCreate, 1, "req-new")))
			if parent := runGit(t, rm.bare, "rev-parse", res.Commit+"^"); parent != before {
				t.Fatalf("pushed commit's parent %s, want the remote's tip %s", parent, before)
			}
			mustOK(t, r.Submit(ctx, change("local", "old", ActionUpdate, 3, "req-old-3")))

			if mode == "disk" {
				// Stopped before the history arrived: the next start carries on.
				r.Close()
				if _, err := os.Stat(filepath.Join(dir, "shallow")); err != nil {
					t.Fatalf("the clone's shallow file: %v", err)
				}
				r = open(t, rm, func(o *Options) { o.Dir = dir; o.holdHistory = hold; o.shallowDepth = 1 })
				if r.historyComplete() {
					t.Fatal("a restart of a shallow clone took its history for complete")
				}
			}
			close(hold)
			waitFor(t, "the history behind the shallow start", r.historyComplete)

			got, err := r.History(ctx, store.Dir("local", "old"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[1].Hash != want[0].Hash || got[2].Hash != want[1].Hash {
				t.Fatalf("history once complete: %v, want the new update over %v", hashes(got), hashes(want))
			}
			waitFor(t, "the history index", r.HistoryIndexed)
			indexed, err := r.History(ctx, store.Dir("local", "old"), 0)
			if err != nil || strings.Join(hashes(indexed), " ") != strings.Join(hashes(got), " ") {
				t.Fatalf("indexed history %v (%v), want %v", hashes(indexed), err, hashes(got))
			}
			if _, err := r.RemovalsSince(ctx, time.Now().Add(-time.Hour)); err != nil {
				t.Fatalf("RemovalsSince once complete: %v", err)
			}
			if mode == "disk" {
				if _, err := os.Stat(filepath.Join(dir, "shallow")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the shallow file is still there once the history is complete: %v", err)
				}
			}
			// The Request-Id index reaches behind the old boundary again.
			info, err := r.FindRequest(ctx, "req-old-1")
			if err != nil || info.Commit != want[1].Hash {
				t.Fatalf("FindRequest of a commit behind the old boundary: %+v, %v", info, err)
			}
		})
	}
}

func hashes(cs []Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Hash[:8]
	}
	return out
}

// waitFor polls cond until it holds; a minute is a hang, not a slow machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShallowFetchNamesBoundary: while the history behind a shallow start is loading,
// a fetch tells the server where the clone ends. A fleet of more than firstFetchDepth
// commits once held a file, removed long ago; a commit pushed from outside restores it
// with the same content, so the same blob, which lies only behind the boundary. A
// fetch that sent its have as if the clone were complete would not receive that blob
// (upload-pack, packing from reachability bitmaps, leaves out all the have reaches),
// and the file at the new tip could not be read until the history arrived.
func TestShallowFetchNamesBoundary(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t, "http")
	work := filepath.Join(t.TempDir(), "work")
	runGit(t, "", "clone", "-q", rm.bare, work)
	const path = "stores/local/restored/config.yaml"
	content := "restored: same bytes as long ago\n"
	if err := os.MkdirAll(filepath.Join(work, filepath.Dir(path)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, path), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", path)
	runGit(t, work, "commit", "-q", "-m", "add the file")
	blob := runGit(t, work, "rev-parse", "HEAD:"+path)
	runGit(t, work, "rm", "-q", path)
	runGit(t, work, "commit", "-q", "-m", "remove the file")
	for i := 0; i < firstFetchDepth+10; i++ {
		runGit(t, work, "commit", "-q", "--allow-empty", "-m", "filler")
	}
	runGit(t, work, "push", "-q", "origin", "HEAD:main")
	// The server packs its history with reachability bitmaps, as git gc does for a
	// bare repository: upload-pack then leaves out everything a have reaches, not
	// only what its tree holds.
	runGit(t, rm.bare, "repack", "-q", "-a", "-d", "-b")

	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	dir := filepath.Join(t.TempDir(), "clone.git")
	replicas := map[string]*Repo{
		"memory": open(t, rm, func(o *Options) { o.holdHistory = hold }),
		"disk":   open(t, rm, func(o *Options) { o.Dir = dir; o.holdHistory = hold }),
	}
	for mode, r := range replicas {
		if r.historyComplete() || len(r.shallowBoundary()) != 1 {
			t.Fatalf("%s: a %d-commit fleet did not start shallow (boundary %d)", mode, firstFetchDepth+13, len(r.shallowBoundary()))
		}
		r.mu.RLock()
		err := r.st.HasEncodedObject(plumbing.NewHash(blob))
		r.mu.RUnlock()
		if err == nil {
			t.Fatalf("%s: the blob behind the boundary arrived with the shallow start; the test proves nothing", mode)
		}
	}

	// From outside: a commit restoring the file, byte for byte.
	if err := os.MkdirAll(filepath.Join(work, filepath.Dir(path)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, path), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", path)
	runGit(t, work, "commit", "-q", "-m", "restore the file")
	runGit(t, work, "push", "-q", "origin", "HEAD:main")
	head := remoteHead(t, rm)

	for mode, r := range replicas {
		if err := r.fetch(ctx); err != nil {
			t.Fatalf("%s: fetch: %v", mode, err)
		}
		r.mu.RLock()
		tip := r.tip
		got, err := func() (string, error) {
			cm, err := object.GetCommit(r.st, tip)
			if err != nil {
				return "", err
			}
			tree, err := cm.Tree()
			if err != nil {
				return "", err
			}
			f, err := tree.File(path)
			if err != nil {
				return "", err
			}
			return f.Contents()
		}()
		r.mu.RUnlock()
		if tip.String() != head {
			t.Fatalf("%s: tip %s after the fetch, want the remote's %s", mode, tip, head)
		}
		if err != nil || got != content {
			t.Fatalf("%s: the restored file at the new tip: %q, %v; want its content (blob %s, behind the boundary)", mode, got, err, blob[:8])
		}
		if r.historyComplete() || len(r.shallowBoundary()) != 1 {
			t.Fatalf("%s: the fetch changed the boundary (%d commits) or took the history for complete", mode, len(r.shallowBoundary()))
		}
	}
}
