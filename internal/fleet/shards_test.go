package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/store"
)

// pushAtShards commits with the git CLI what `gitops-api reshard` leaves: the
// shards file with n, and each store's folder (rendered at the default count, the
// content does not depend on it) at its shard of n; with move, the store folders
// at the default layout are removed in the same commit.
func pushAtShards(t *testing.T, rm fleetRemote, n int, move bool, stores ...store.Store) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	git(t, "", "clone", "-q", rm.bare, work)
	if err := os.WriteFile(filepath.Join(work, store.ShardsFile), store.FormatShards(n), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		s = s.WithDefaults("")
		old := store.Dir(s.Cluster, s.Name)
		if move {
			git(t, work, "rm", "-r", "-q", old)
		}
		files, err := renderer.Render(s, store.StateActive)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			p := filepath.Join(work, filepath.FromSlash(store.DirIn(s.Cluster, s.Name, n)+strings.TrimPrefix(f.Path, old)))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "reshard to "+store.ShardsFile)
	git(t, work, "push", "-q", "origin", "HEAD:main")
}

// storeFolders lists the store folders on the remote's branch.
func storeFolders(t *testing.T, rm fleetRemote) []string {
	t.Helper()
	var out []string
	for _, p := range strings.Split(git(t, rm.bare, "ls-tree", "-r", "--name-only", "main", "--", store.StoresRoot), "\n") {
		if ref, _, ok := store.ParseFile(p); ok && !slices.Contains(out, ref.Dir()) {
			out = append(out, ref.Dir())
		}
	}
	slices.Sort(out)
	return out
}

// shardedNames are store names whose shard at 256 is not their shard at 4,096, so
// a path computed at the wrong count is a wrong path.
func shardedNames(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if store.ShardIn(n, 256) == store.Shard(n) {
			t.Fatalf("%s is in shard %s at both counts; pick another name", n, store.Shard(n))
		}
	}
}

// A fleet of 256 shards: every change the service makes lands in the store's folder
// at 256, and reads and history find it there; no folder appears at the default
// layout.
func TestServiceAtFleetShardCount(t *testing.T) {
	ctx := context.Background()
	shardedNames(t, "old-shop", "new-shop")
	rm := newFleetRemote(t)
	pushAtShards(t, rm, 256, false, shop("old-shop", ""))
	r := openReplica(t, rm, nil)
	at256 := func(name string) string { return store.DirIn(store.DefaultCluster, name, 256) }
	folders := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := storeFolders(t, rm); !slices.Equal(got, want) {
			t.Fatalf("store folders on the remote: %q, want %q", got, want)
		}
	}

	if _, err := r.svc.Create(ctx, shop("new-shop", ""), meta()); err != nil {
		t.Fatal(err)
	}
	folders(at256("old-shop"), at256("new-shop"))
	if _, err := r.svc.Update(ctx, "old-shop", func(s store.Store) (store.Store, error) {
		s.Version = "0.1.1"
		return s, nil
	}, meta()); err != nil {
		t.Fatal(err)
	}
	folders(at256("old-shop"), at256("new-shop"))
	if got := git(t, rm.bare, "show", "main:"+at256("old-shop")+"/helmrelease.yaml"); !strings.Contains(got, "0.1.1") {
		t.Fatalf("the update did not reach the store's folder:\n%s", got)
	}
	v, err := r.svc.Get(ctx, "old-shop")
	if err != nil || v.Store.Version != "0.1.1" {
		t.Fatalf("get after the update: %+v, %v", v.Store, err)
	}
	h, err := r.svc.History(ctx, "new-shop")
	if err != nil || len(h) != 1 || h[0].Action != store.ActionCreate {
		t.Fatalf("new-shop's history: %+v, %v", h, err)
	}
	d, err := fleet.Differ{R: gitrepo.Fleet{R: r.repo}}.ChangeDiff(ctx, h[0])
	if err != nil || len(d) == 0 {
		t.Fatalf("diff of new-shop's create: %+v, %v", d, err)
	}
	if _, err := r.svc.Delete(ctx, "new-shop", false, meta()); err != nil {
		t.Fatal(err)
	}
	purge(t, r.svc, "new-shop")
	folders(at256("old-shop"))
}

// The count changes between the render and the commit (a reshard another process
// pushed, not yet fetched): the writer refuses the change as a conflict and writes
// nothing at the old layout; the retry computes the change at the new count.
func TestReshardBetweenRenderAndCommit(t *testing.T) {
	ctx := context.Background()
	shardedNames(t, "old-shop", "new-shop")
	rm := newFleetRemote(t)
	r := openReplica(t, rm, nil)
	if _, err := r.svc.Create(ctx, shop("old-shop", ""), meta()); err != nil {
		t.Fatal(err)
	}
	// The reshard lands on the remote behind the replica's back: its clone, and
	// so the count it renders with, are still at 4,096.
	pushAtShards(t, rm, 256, true, shop("old-shop", ""))
	at256 := []string{store.DirIn(store.DefaultCluster, "old-shop", 256)}

	_, err := r.svc.Create(ctx, shop("new-shop", ""), meta())
	if store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("create computed at the old count: %v, want a conflict", err)
	}
	if got := storeFolders(t, rm); !slices.Equal(got, at256) {
		t.Fatalf("store folders after the refused create: %q, want %q", got, at256)
	}
	if _, err := r.svc.Create(ctx, shop("new-shop", ""), meta()); err != nil {
		t.Fatalf("the create's retry: %v", err)
	}
	want := []string{at256[0], store.DirIn(store.DefaultCluster, "new-shop", 256)}
	slices.Sort(want)
	if got := storeFolders(t, rm); !slices.Equal(got, want) {
		t.Fatalf("store folders after the retry: %q, want %q", got, want)
	}
	if _, err := r.svc.Update(ctx, "old-shop", func(s store.Store) (store.Store, error) {
		s.Version = "0.1.1"
		return s, nil
	}, meta()); err != nil {
		t.Fatalf("update of the moved store: %v", err)
	}
	if got := storeFolders(t, rm); !slices.Equal(got, want) {
		t.Fatalf("store folders after the update: %q, want %q", got, want)
	}
}
