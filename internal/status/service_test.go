package status_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// publisher stands in for gitops-api's shard publisher (internal/publish, which has
// its own tests against the cluster): it publishes a new revision of the shard and
// tells the Tracker, or fails while fail is set. It is safe for concurrent use (the
// publish queue's workers call it).
type publisher struct {
	t    *status.Tracker
	mu   sync.Mutex
	fail bool
	n    int
	last string
}

func (p *publisher) publish(_ context.Context, shard string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return "", errors.New("cluster unreachable")
	}
	p.n++
	p.last = fmt.Sprintf("main@sha1:%040x", p.n)
	p.t.Published(shard, p.last)
	return p.last, nil
}

func (p *publisher) setFail(v bool) {
	p.mu.Lock()
	p.fail = v
	p.mu.Unlock()
}

func (p *publisher) latest() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// newFleet is the fleet service over a real Git repository served by git
// http-backend on loopback.
func newFleet(t *testing.T) *fleet.Service {
	t.Helper()
	return openFleet(t, newRemote(t), gitrepo.Options{})
}

// newRemote serves a new fleet repository, seeded with one commit, and returns its
// URL.
func newRemote(t *testing.T) string {
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
	return remote
}

// openFleet is a fleet service over remote, as a (re)started gitops-api opens it:
// its own clone and store index. opts.URL is set to remote.
func openFleet(t *testing.T, remote string, opts gitrepo.Options) *fleet.Service {
	t.Helper()
	ctx := context.Background()
	opts.URL = remote
	repo, err := gitrepo.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// queued is a publish queue over publish, closed when the test ends.
func queued(t *testing.T, tr *status.Tracker, publish func(context.Context, string) (string, error)) *status.Queue {
	t.Helper()
	q := status.NewQueue(status.QueueConfig{T: tr, Publish: publish, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	t.Cleanup(func() { q.Close(context.Background()) })
	return q
}

// idle waits until q has published every commit added so far.
func idle(t *testing.T, q *status.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.Idle(ctx); err != nil {
		t.Fatalf("publish queue not idle: %v", err)
	}
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
	pub := &publisher{t: tr}
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queue: queued(t, tr, pub.publish)}
	shard := store.Shard("shop")

	out, err := ss.Create(ctx, store.Store{Name: "shop", Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	idle(t, ss.Queue)
	st := phase(t, tr, "shop", store.PhaseCommitted)
	if want := "waiting for ExternalArtifact stores-" + shard + " to include the commit"; st.Message != want || st.Commit != out.Commit.SHA {
		t.Fatalf("committed: %q at %s, want %q at %s", st.Message, st.Commit, want, out.Commit.SHA)
	}
	first := pub.latest()
	tr.SetShardSource(shard, first, nil)
	tr.SetShardApply(shard, first, nil)
	phase(t, tr, "shop", store.PhaseApplied)

	// The update's publish fails: what the cluster has does not include it.
	pub.setFail(true)
	_, err = ss.Update(ctx, "shop", func(s store.Store) (store.Store, error) {
		s.Settings.Title = "Shop two"
		return s, nil
	}, store.Meta{Actor: "t", RequestID: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	phase(t, tr, "shop", store.PhaseCommitted)
	// The cluster answers again: the queue's retry publishes the shard at the newest head.
	pub.setFail(false)
	idle(t, ss.Queue)
	latest := pub.latest()
	if latest == first {
		t.Fatal("the failed publish was not retried")
	}
	tr.SetShardSource(shard, latest, nil)
	phase(t, tr, "shop", store.PhaseSourceFetched)

	// A restart: the publisher adopts the artifact it finds, then the stores load.
	tr2 := status.New(status.Options{})
	defer tr2.Close()
	tr2.SetConnected(true)
	tr2.Published(shard, latest)
	n, err := status.Service{Stores: svc, T: tr2, ShardOf: store.Shard}.Load(ctx)
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
