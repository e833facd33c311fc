package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// pushShardsFile commits content as the fleet's shards file with the git CLI, as
// another process (gitops-api reshard) would, behind the writer's back.
func pushShardsFile(t *testing.T, rm remote, content string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	runGit(t, "", "clone", "-q", rm.bare, work)
	if err := os.WriteFile(filepath.Join(work, store.ShardsFile), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", store.ShardsFile)
	runGit(t, work, "commit", "-q", "-m", "shards")
	runGit(t, work, "push", "-q", "origin", "HEAD:main")
}

// The writer holds a change's folder to the count of the commit it lands on: a
// change made at 4,096 while the remote moved to 256 is refused as a conflict and
// nothing lands at the old layout; at the new count it lands; a shards file that
// does not parse refuses every change rather than taking the default.
func TestWriterHoldsFolderToShardCount(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t, "http")
	r := open(t, rm)
	if n, err := r.Shards(ctx); err != nil || n != store.DefaultShards {
		t.Fatalf("count without the file: %d, %v", n, err)
	}
	const name = "shop"
	if store.ShardIn(name, 256) == store.Shard(name) {
		t.Fatal("pick a name whose shard differs at 256")
	}
	pushShardsFile(t, rm, "256\n")

	stale := change("local", name, ActionCreate, 1, "req-stale")
	wantErr(t, r.Submit(ctx, stale), ErrConflict)
	if out := runGit(t, rm.bare, "ls-tree", "-d", "main", store.Dir("local", name)); out != "" {
		t.Fatalf("the refused change landed at the old layout: %s", out)
	}
	if n, err := r.Shards(ctx); err != nil || n != 256 {
		t.Fatalf("count after the writer fetched the move: %d, %v", n, err)
	}

	fresh := change("local", name, ActionCreate, 1, "req-fresh")
	fresh.Dir = store.DirIn("local", name, 256)
	mustOK(t, r.Submit(ctx, fresh))
	if out := runGit(t, rm.bare, "ls-tree", "-d", "--name-only", "main", fresh.Dir); out != fresh.Dir {
		t.Fatalf("the change at the new count: %q, want %s", out, fresh.Dir)
	}

	other := change("local", name, ActionUpdate, 2, "req-other")
	other.Dir = store.DirIn("local", "another", 256)
	wantErr(t, r.Submit(ctx, other), ErrInvalid)

	pushShardsFile(t, rm, "300\n")
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Shards(ctx); err == nil {
		t.Fatal("a shards file of 300 was read as a count")
	}
	next := change("local", name, ActionUpdate, 3, "req-bad-count")
	next.Dir = fresh.Dir
	if res := r.Submit(ctx, next); res.Err == nil || errors.Is(res.Err, ErrConflict) {
		t.Fatalf("a change on a fleet whose count does not parse: %v, want a failure that is not a retryable conflict", res.Err)
	}
}
