package serve

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// TestReshardRekeysStatus: a reshard pushed from outside (as `gitops-api reshard`
// does) reaches this replica through the follower; the store it moved must then
// wait for, and show, its shard under the new count, so its new shard's publish and
// Kustomization bring it to ready and the old shard's no longer matter.
func TestReshardRekeysStatus(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs the git CLI to push the reshard")
	}
	ctx := context.Background()
	url, _ := githttp.ServeFleet(t)
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	log := slog.New(slog.DiscardHandler)
	tr := status.New(status.Options{})
	t.Cleanup(tr.Close)
	tr.SetConnected(true)
	ss := &status.Service{Stores: svc, T: tr, ShardOf: fleetShardOf(repo, log), Head: fleetHead(repo)}
	fl := newFollower(repo, svc, time.Hour, log)
	followStatus(fl, ss, repo, log)

	const name = "moved-shop"
	if _, err := ss.Create(ctx, store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "create"}); err != nil {
		t.Fatal(err)
	}
	oldShard, newShard := store.ShardIn(name, store.DefaultShards), store.ShardIn(name, 16)
	if oldShard == newShard {
		t.Fatalf("%s is in shard %s at both counts; pick a store the move carries", name, oldShard)
	}
	if sh := tr.ShardOf(name); sh != oldShard {
		t.Fatalf("before the move: shard %q, want %q", sh, oldShard)
	}

	// Its shard at the new count is one both counts have: applied at the head before
	// the move, which does not carry the store.
	before, _ := repo.Head()
	tr.Published(newShard, "main@sha1:"+before)
	tr.SetShardSource(newShard, "main@sha1:"+before, nil)
	tr.SetShardApply(newShard, "main@sha1:"+before, nil)

	// The reshard, pushed from another clone: the store's folder moves, with the count.
	work := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("clone", "-q", url, ".")
	from, to := store.DirIn(store.DefaultCluster, name, store.DefaultShards), store.DirIn(store.DefaultCluster, name, 16)
	if err := os.MkdirAll(filepath.Join(work, filepath.Dir(to)), 0o755); err != nil {
		t.Fatal(err)
	}
	run("mv", from, to)
	if err := os.WriteFile(filepath.Join(work, store.ShardsFile), store.FormatShards(16), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", store.ShardsFile)
	run("commit", "-q", "-m", "reshard")
	run("push", "-q", "origin", "HEAD")
	fl.miss(ctx)

	head, _ := repo.Head()
	if n, _ := repo.Shards(ctx); n != 16 {
		t.Fatalf("this replica's head %s has %d shards, want 16", head, n)
	}
	if sh := tr.ShardOf(name); sh != newShard {
		t.Fatalf("after the move: the status side keeps %s in shard %q, want %q", name, sh, newShard)
	}
	// The new shard's publish from before the move does not carry it: the store
	// waits for the publish of the move.
	phase := func(want store.Phase) {
		t.Helper()
		if st, _ := tr.Get(name); st.Phase != want {
			t.Fatalf("%s: %s (%s), want %s", name, st.Phase, st.Message, want)
		}
	}
	phase(store.PhaseCommitted)
	tr.Published(newShard, "main@sha1:"+head)
	tr.SetShardSource(newShard, "main@sha1:"+head, nil)
	phase(store.PhaseSourceFetched)
	tr.SetShardApply(newShard, "main@sha1:"+head, nil)
	if st, _ := tr.Get(name); st.Phase == store.PhaseCommitted || st.Phase == store.PhaseSourceFetched {
		t.Fatalf("%s: %s (%s) after its new shard %s applied the move", name, st.Phase, st.Message, newShard)
	}
}
