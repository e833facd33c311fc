package status_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// publishing stands in for gitops-api's shard publisher, which wraps the fleet
// service the same way: after a commit it publishes the store's shard, tells the
// Tracker (Published) and reports the revision in the outcome. fail makes the
// publish fail (no revision).
type publishing struct {
	fleet.Lifecycle
	t    *status.Tracker
	fail bool
}

func (p *publishing) published(out fleet.Outcome, err error) (fleet.Outcome, error) {
	if err == nil && !p.fail && out.Commit != nil && !out.DryRun {
		out.ShardRevision = "main@sha1:" + out.Commit.SHA
		p.t.Published(render.Shard(out.Store), out.ShardRevision)
	}
	return out, err
}

func (p *publishing) Create(ctx context.Context, s store.Store, m fleet.Meta) (fleet.Outcome, error) {
	return p.published(p.Lifecycle.Create(ctx, s, m))
}

func (p *publishing) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m fleet.Meta) (fleet.Outcome, error) {
	return p.published(p.Lifecycle.Update(ctx, name, change, m))
}

// newFleet is the fleet service over a real Git repository served by git
// http-backend on loopback.
func newFleet(t *testing.T) *fleet.Service {
	t.Helper()
	git, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatalf("git http-backend is needed for this test: %v", err)
	}
	if _, err := git.InitBare("fleet.git"); err != nil {
		t.Fatal(err)
	}
	if err := git.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { git.Close() })
	remote := git.URL() + "/fleet.git"
	// Seed the remote like a real fleet repository: one commit.
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte("fleet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "seed"}, {"push", "-q", remote, "main"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = seed
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_TERMINAL_PROMPT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: remote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: fleet.GitRepo{R: repo}, Renderer: fleet.FleetRenderer{Options: render.LocalOptions()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func phase(t *testing.T, tr *status.Tracker, name string, p store.Phase) status.Status {
	t.Helper()
	st, ok := tr.Get(name)
	if !ok || st.Phase != p {
		t.Fatalf("%s: %+v, want phase %s", name, st, p)
	}
	return st
}

// TestServiceShards: a change through the Service reaches the Tracker with the
// store's shard and the published revision, a failed publish waits for the next
// one, and Load after the publisher's initial sync waits for the shard's latest.
func TestServiceShards(t *testing.T) {
	ctx := context.Background()
	svc := newFleet(t)
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	pub := &publishing{Lifecycle: svc, t: tr}
	ss := status.Service{Stores: pub, T: tr, ShardOf: render.Shard}
	shard := render.Shard("shop")

	out, err := ss.Create(ctx, store.Store{Name: "shop", Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "o@example.com"}}, fleet.Meta{Actor: "t", RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	st := phase(t, tr, "shop", store.PhaseCommitted)
	if want := "waiting for ExternalArtifact stores-" + shard + " to include the commit"; st.Message != want || st.Commit != out.Commit.SHA {
		t.Fatalf("committed: %q at %s, want %q at %s", st.Message, st.Commit, want, out.Commit.SHA)
	}
	tr.SetShardSource(shard, out.ShardRevision, nil)
	tr.SetShardApply(shard, out.ShardRevision, nil)
	phase(t, tr, "shop", store.PhaseApplied)

	// The update's publish fails: what the cluster has does not include it.
	pub.fail = true
	up, err := ss.Update(ctx, "shop", func(s store.Store) (store.Store, error) {
		s.Settings.Title = "Shop two"
		return s, nil
	}, fleet.Meta{Actor: "t", RequestID: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if up.ShardRevision != "" {
		t.Fatalf("failed publish reported %q", up.ShardRevision)
	}
	phase(t, tr, "shop", store.PhaseCommitted)
	// The periodic sync publishes the shard at the newest head.
	latest := "main@sha1:" + up.Commit.SHA
	tr.Published(shard, latest)
	tr.SetShardSource(shard, latest, nil)
	phase(t, tr, "shop", store.PhaseSourceFetched)

	// A restart: the publisher adopts the artifact it finds, then the stores load.
	tr2 := status.New(status.Options{})
	defer tr2.Close()
	tr2.SetConnected(true)
	tr2.Published(shard, latest)
	n, err := status.Service{Stores: svc, T: tr2, ShardOf: render.Shard}.Load(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Load: %d stores, %v", n, err)
	}
	if st := phase(t, tr2, "shop", store.PhaseCommitted); !strings.Contains(st.Message, "stores-"+shard) {
		t.Fatalf("loaded store waits on %q", st.Message)
	}
	tr2.SetShardSource(shard, latest, nil)
	tr2.SetShardApply(shard, latest, nil)
	phase(t, tr2, "shop", store.PhaseApplied)
}
