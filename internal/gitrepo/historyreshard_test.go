package gitrepo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// A store's history follows it across a reshard: read from its folder at the new
// shard count (or the old one), it lists the commits before the move, the move, and
// those after, newest first, and never another store's; the same once the index is
// read back after a restart and once it is built again from nothing.
func TestHistoryFollowsAReshard(t *testing.T) {
	rm := newRemote(t, "path")
	clone := filepath.Join(t.TempDir(), "clone.git")
	withDir := func(o *Options) { o.Dir = clone }
	r := open(t, rm, withDir)
	ctx := context.Background()
	waitIndexReady(t, r)

	var want []string // shop-a's commits, oldest first
	want = append(want, mustOK(t, r.Submit(ctx, change("local", "shop-a", ActionCreate, 1, "req-a1"))).Commit)
	b1 := mustOK(t, r.Submit(ctx, change("local", "shop-b", ActionCreate, 1, "req-b1"))).Commit
	want = append(want, mustOK(t, r.Submit(ctx, change("local", "shop-a", ActionUpdate, 2, "req-a2"))).Commit)

	move := pushReshard(t, rm, 256)
	want = append(want, move)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	a3 := change("local", "shop-a", ActionUpdate, 3, "req-a3")
	a3.Dir = store.DirIn("local", "shop-a", 256)
	want = append(want, mustOK(t, r.Submit(ctx, a3)).Commit)

	check := func(when string) {
		t.Helper()
		for _, dir := range []string{store.DirIn("local", "shop-a", 256), store.DirIn("local", "shop-a", 4096)} {
			h, err := r.indexedHistory(ctx, dir, plumbing.ZeroHash, false, 100)
			if err != nil {
				t.Fatalf("%s: history of %s: %v", when, dir, err)
			}
			var got []string
			for i := len(h) - 1; i >= 0; i-- {
				got = append(got, h[i].Hash)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s: history of shop-a read at %s, oldest first:\n%s\nwant\n%s", when, dir, historyOf(t, h), strings.Join(want, "\n"))
			}
			// Every entry carries the folder's tree after it: the move's is the one it
			// moved, not the emptied old folder.
			for _, c := range h {
				if c.Tree == "" {
					t.Errorf("%s: commit %s of shop-a's history has no tree", when, c.Hash)
				}
			}
			if len(h) == len(want) && h[1].Tree != h[2].Tree {
				t.Errorf("%s: the move changed shop-a's tree: %s → %s", when, h[2].Tree, h[1].Tree)
			}
		}
		// A limit keeps the newest.
		if h, err := r.indexedHistory(ctx, store.DirIn("local", "shop-a", 256), plumbing.ZeroHash, false, 2); err != nil || len(h) != 2 || h[0].Hash != want[3] || h[1].Hash != move {
			t.Errorf("%s: shop-a's newest 2: %s %v", when, historyOf(t, h), err)
		}
		if h, err := r.indexedHistory(ctx, store.DirIn("local", "shop-b", 256), plumbing.ZeroHash, false, 100); err != nil || len(h) != 2 || h[0].Hash != move || h[1].Hash != b1 {
			t.Errorf("%s: history of shop-b: %s %v", when, historyOf(t, h), err)
		}
		// The API's entries (Fleet.History): shop-a's three requests; the move names no store.
		res, err := Fleet{R: r}.History(ctx, store.DirIn("local", "shop-a", 256), store.HistoryPage{})
		es := res.Entries
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.RequestID)
		}
		if got := strings.Join(ids, " "); got != "req-a3 req-a2 req-a1" {
			t.Errorf("%s: shop-a's entries: %s", when, got)
		}
	}
	check("as indexed")

	r.Close()
	r = open(t, rm, withDir)
	waitIndexReady(t, r)
	check("read back after a restart")

	r.Close()
	if err := os.Remove(historyIndexPath(clone)); err != nil {
		t.Fatal(err)
	}
	r = open(t, rm, withDir)
	waitIndexReady(t, r)
	check("built again from nothing")
}

// pushReshard pushes what `gitops-api reshard --shards n` commits (cmd/gitops-api/app,
// moveClone), from a clone of the remote with the git CLI: every store folder of every
// cluster moved to its shard at n in one commit, the count written, the trailers Action
// and Shards. It returns the commit.
func pushReshard(t *testing.T, rm remote, n int) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "w")
	runGit(t, filepath.Dir(work), "clone", "-q", rm.url, work)
	dirs, err := filepath.Glob(filepath.Join(work, store.StoresRoot, "*", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, d := range dirs {
		rel, _ := filepath.Rel(work, d)
		ref, ok := store.ParseDir(filepath.ToSlash(rel))
		if !ok {
			t.Fatalf("%s is not a store folder", rel)
		}
		to := store.DirIn(ref.Cluster, ref.Name, n)
		if to == ref.Dir() {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, to)), 0o755); err != nil {
			t.Fatal(err)
		}
		runGit(t, work, "mv", ref.Dir(), to)
		moved++
	}
	if err := os.WriteFile(filepath.Join(work, store.ShardsFile), store.FormatShards(n), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", fmt.Sprintf("reshard the fleet to %d shards (%d stores moved)\n\nAction: reshard\nActor: operator@example.com\nShards: %d", n, moved, n))
	runGit(t, work, "push", "-q", "origin", "HEAD:main")
	return runGit(t, work, "rev-parse", "HEAD")
}
