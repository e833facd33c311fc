package serve

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/metrics"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// writes records the artifacts a publisher writes to the cluster. It stands in for
// the API server only in this test of who writes; the e2e tests run the real one.
type writes struct {
	mu     sync.Mutex
	shards []string
}

func (w *writes) PublishArtifact(_ context.Context, shard string, _ publish.Artifact) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shards = append(w.shards, shard)
	return nil
}

func (w *writes) PublishedArtifacts(context.Context) (map[string]publish.Artifact, error) {
	return map[string]publish.Artifact{}, nil
}

func (w *writes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.shards)
}

// TestQueueOnStandby: the publish queue publishes through the leader. While this
// replica holds the Lease a commit's shard is written to the cluster; once its term
// ended, a commit made here is not (the standby writes nothing) and the queue waits
// until the new leader's artifact, as the watch shows it, carries this replica's
// head; the store then waits for exactly that revision.
func TestQueueOnStandby(t *testing.T) {
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

	tr := status.New(status.Options{})
	t.Cleanup(tr.Close)
	tr.SetConnected(true)
	sb := newStandby(tr.View(""), metrics.New().Cluster("local"))
	cluster := &writes{}
	pub, err := publish.New(publish.Config{Source: repo, Cluster: cluster, FleetCluster: "local", Dir: t.TempDir(),
		URL: "http://127.0.0.1:9", OnPublish: tr.Published})
	if err != nil {
		t.Fatal(err)
	}
	l := &leader{repo: repo, sb: sb, cluster: "local"}
	q := status.NewQueue(status.QueueConfig{T: tr, Publish: l.Publish, Timeout: time.Minute})
	t.Cleanup(func() { q.Close(context.Background()) })
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queue: q}
	idle := func() {
		t.Helper()
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := q.Idle(ictx); err != nil {
			t.Fatalf("publish queue not idle: %v", err)
		}
	}
	create := func(name string) {
		t.Helper()
		if _, err := ss.Create(ctx, store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
			Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "create-" + name}); err != nil {
			t.Fatal(err)
		}
	}

	// Leading: the queue's publish writes the shard.
	sb.setLeading(true)
	l.mu.Lock()
	l.pub = pub
	l.mu.Unlock()
	create("lead-shop")
	idle()
	if n := cluster.count(); n != 1 {
		t.Fatalf("the leader wrote %d artifacts, want 1", n)
	}

	// The term ends: this replica stands by.
	l.mu.Lock()
	l.pub = nil
	l.mu.Unlock()
	sb.setLeading(false)
	create("standby-shop")
	shard := store.Shard("standby-shop")
	if q.Depth() != 1 {
		t.Fatalf("queue depth %d, want the standby's shard waiting", q.Depth())
	}
	phase := func(want store.Phase) {
		t.Helper()
		if st, _ := tr.Get("standby-shop"); st.Phase != want {
			t.Fatalf("standby-shop: %s (%s), want %s", st.Phase, st.Message, want)
		}
	}
	phase(store.PhaseCommitted)
	// The new leader publishes the shard at this replica's head; the watch shows it.
	head, _ := repo.Head()
	sb.SetShardSource(shard, "main@sha1:"+head, nil)
	idle()
	phase(store.PhaseSourceFetched)
	if n := cluster.count(); n != 1 {
		t.Fatalf("the standby wrote %d artifacts (%v), want none", n-1, cluster.shards[1:])
	}
}
