package gitrepo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// historyOf is a folder's history as "hash tree" lines, the way both History and the
// log walk (the reference) tell it.
func historyOf(t *testing.T, cs []Commit) string {
	t.Helper()
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Hash + " " + c.Tree + "\n")
	}
	return b.String()
}

// sameHistory checks that the index answers dir's history as the log walk does, and
// that it really answered from the index.
func sameHistory(t *testing.T, r *Repo, dir string) []Commit {
	t.Helper()
	ctx := context.Background()
	got, err := r.indexedHistory(ctx, dir, plumbing.ZeroHash, false, 100)
	if err != nil {
		t.Fatalf("indexed history of %s: %v", dir, err)
	}
	want, err := r.walkHistory(ctx, dir, plumbing.ZeroHash, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	if historyOf(t, got) != historyOf(t, want) {
		t.Fatalf("history of %s from the index:\n%swalking the log:\n%s", dir, historyOf(t, got), historyOf(t, want))
	}
	return got
}

func waitIndexReady(t *testing.T, r *Repo) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !r.hist.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the history index never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outsideCommit pushes a hand edit of one store's folder (with the writer's trailers)
// from a clone of the remote with the git CLI, and returns the commit.
func outsideCommit(t *testing.T, rm remote, work, name, reqID string, force bool) string {
	t.Helper()
	dir := filepath.Join(work, store.Dir("local", name))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(reqID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "Hand edit of "+name+"\n\nStore: "+name+"\nAction: update\nCluster: local\nRequest-Id: "+reqID)
	args := []string{"push", "-q", "origin", "HEAD:main"}
	if force {
		args = append(args, "--force")
	}
	runGit(t, work, args...)
	return runGit(t, work, "rev-parse", "HEAD")
}

// The history index follows the writer's own commits and outside pushes, is read back
// after a restart and extended from where it stopped, and starts over when a force-push
// rewrites the branch; at every step it answers as the log walk does.
func TestHistoryIndex(t *testing.T) {
	rm := newRemote(t, "path")
	clone := filepath.Join(t.TempDir(), "clone.git")
	withDir := func(o *Options) { o.Dir = clone }
	r := open(t, rm, withDir)
	ctx := context.Background()
	waitIndexReady(t, r)
	a, b := store.Dir("local", "shop-a"), store.Dir("local", "shop-b")
	mustOK(t, r.Submit(ctx, change("local", "shop-a", ActionCreate, 1, "req-a1")))
	mustOK(t, r.Submit(ctx, change("local", "shop-b", ActionCreate, 1, "req-b1")))
	mustOK(t, r.Submit(ctx, change("local", "shop-a", ActionUpdate, 2, "req-a2")))
	if h := sameHistory(t, r, a); len(h) != 2 || h[0].Changes[0].RequestID != "req-a2" {
		t.Fatalf("history of shop-a: %+v", h)
	}
	sameHistory(t, r, b)

	// An outside push touching shop-a, fetched.
	work := filepath.Join(t.TempDir(), "w")
	runGit(t, filepath.Dir(work), "clone", "-q", rm.url, work)
	keep := runGit(t, work, "rev-parse", "HEAD")
	out1 := outsideCommit(t, rm, work, "shop-a", "outside-1", false)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if h := sameHistory(t, r, a); len(h) != 3 || h[0].Hash != out1 {
		t.Fatalf("history of shop-a after the outside push: %s", historyOf(t, h))
	}
	if h := sameHistory(t, r, b); len(h) != 1 {
		t.Fatalf("shop-b's history names the outside edit of shop-a: %s", historyOf(t, h))
	}
	mustOK(t, r.Submit(ctx, change("local", "shop-b", ActionPurge, 0, "req-b2")))
	if h := sameHistory(t, r, b); len(h) != 2 || h[0].Tree != "" {
		t.Fatalf("history of purged shop-b: %s", historyOf(t, h))
	}
	r.Close()

	// A restart reads the index back (ready at once, nothing walked), and what was
	// pushed meanwhile is added on top.
	idx, err := os.ReadFile(historyIndexPath(clone))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(idx), out1+" "+a+"=") {
		t.Fatalf("the index file lacks the outside commit:\n%s", idx)
	}
	before, err := os.Stat(historyIndexPath(clone))
	if err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "pull", "-q", "--rebase", "origin", "main")
	out2 := outsideCommit(t, rm, work, "shop-a", "outside-2", false)
	r = open(t, rm, withDir)
	waitIndexReady(t, r)
	if h := sameHistory(t, r, a); len(h) != 4 || h[0].Hash != out2 {
		t.Fatalf("history of shop-a after a restart: %s", historyOf(t, h))
	}
	after, err := os.ReadFile(historyIndexPath(clone))
	if err != nil {
		t.Fatal(err)
	}
	// Extended, not built again: the same file, one line longer.
	if st, err := os.Stat(historyIndexPath(clone)); err != nil || !os.SameFile(before, st) ||
		strings.Count(string(after), "\n") != strings.Count(string(idx), "\n")+1 {
		t.Fatalf("the index was not extended in place:\n%s\nwas:\n%s", after, idx)
	}

	// A force-push rewrites the branch from before the outside commits: shop-a's
	// history loses them and gains the new one, whichever way it is answered.
	runGit(t, work, "reset", "-q", "--hard", keep)
	out3 := outsideCommit(t, rm, work, "shop-a", "rewritten", true)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := r.History(ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Hash != out3 {
		t.Fatalf("history of shop-a after the rewrite: %s", historyOf(t, h))
	}
	waitIndexReady(t, r)
	if h := sameHistory(t, r, a); len(h) != 3 || h[0].Hash != out3 || strings.Contains(historyOf(t, h), out1) {
		t.Fatalf("indexed history of shop-a after the rewrite: %s", historyOf(t, h))
	}
	// shop-b's purge was dropped with the rewrite: only its create is left.
	if h := sameHistory(t, r, b); len(h) != 1 || h[0].Tree == "" {
		t.Fatalf("history of shop-b after the rewrite: %s", historyOf(t, h))
	}
}

// A torn last line (a crash in the middle of an append) is dropped on reading, and the
// index is whole again once it catches up.
func TestHistoryIndexTornFile(t *testing.T) {
	rm := newRemote(t, "path")
	clone := filepath.Join(t.TempDir(), "clone.git")
	withDir := func(o *Options) { o.Dir = clone }
	r := open(t, rm, withDir)
	ctx := context.Background()
	waitIndexReady(t, r)
	for _, name := range []string{"one", "two", "three"} {
		mustOK(t, r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)))
	}
	sameHistory(t, r, store.Dir("local", "three"))
	r.Close()
	path := historyIndexPath(clone)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	r = open(t, rm, withDir)
	waitIndexReady(t, r)
	for _, name := range []string{"one", "two", "three"} {
		if h := sameHistory(t, r, store.Dir("local", name)); len(h) != 1 {
			t.Fatalf("history of %s: %s", name, historyOf(t, h))
		}
	}
	if c, _ := os.ReadFile(path); strings.Count(string(c), "\n") != strings.Count(string(b), "\n") {
		t.Fatalf("index file after the torn line was indexed again:\n%s\nwas:\n%s", c, b)
	}
}

// Histories read while changes land from several clients (and the index catches up
// under them) end up as the log walk tells them; on a memory clone, whose index lives
// in memory only.
func TestHistoryIndexUnderWrites(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	waitIndexReady(t, r)
	names := []string{"w-0", "w-1", "w-2", "w-3"}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if res := r.Submit(ctx, change("local", name, ActionCreate, 1, fmt.Sprintf("c-%d", i))); res.Err != nil {
				t.Errorf("create %s: %v", name, res.Err)
				return
			}
			for rev := 2; rev <= 6; rev++ {
				c := change("local", name, ActionUpdate, rev, fmt.Sprintf("u-%d-%d", i, rev))
				if res := r.Submit(ctx, c); res.Err != nil {
					t.Errorf("update %s: %v", name, res.Err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := r.History(ctx, store.Dir("local", name), 0); err != nil {
					t.Errorf("history of %s: %v", name, err)
				}
			}
		}()
	}
	wg.Wait()
	for _, name := range names {
		if h := sameHistory(t, r, store.Dir("local", name)); len(h) != 6 {
			t.Errorf("history of %s: %s", name, historyOf(t, h))
		}
	}
	if r.hist.path != "" || r.hist.f != nil {
		t.Errorf("a memory clone keeps its index in a file: %q", r.hist.path)
	}
}
