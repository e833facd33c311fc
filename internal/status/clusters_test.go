package status_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// viewPublisher is publisher for one cluster's view: it records which shards it
// was asked to publish.
type viewPublisher struct {
	v      *status.ClusterView
	mu     sync.Mutex
	n      int
	shards []string
	last   string
}

func (p *viewPublisher) publish(_ context.Context, shard string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.last = fmt.Sprintf("main@sha1:%s%039x", p.v.Cluster(), p.n)
	p.shards = append(p.shards, shard)
	p.v.Published(shard, p.last)
	return p.last, nil
}

func (p *viewPublisher) latest() (string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, slices.Clone(p.shards)
}

// TestServiceClusters: with stores in two clusters, each commit goes to its own
// cluster's queue, a shard revision seen in one cluster moves only that cluster's
// stores (two stores in the same shard, one per cluster), and a cluster that stops
// answering makes only its own stores unknown. Load after a restart puts every
// store back in its cluster.
func TestServiceClusters(t *testing.T) {
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: newRemote(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()},
		Cluster: "a", Clusters: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tr := status.New(status.Options{})
	defer tr.Close()
	va, vb := tr.View("a"), tr.View("b")
	va.SetConnected(true)
	vb.SetConnected(true)
	pa, pb := &viewPublisher{v: va}, &viewPublisher{v: vb}
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queues: map[string]*status.Queue{
		"a": queued(t, tr, pa.publish), "b": queued(t, tr, pb.publish)}}

	// Two names in one shard, so that only the cluster tells their shards apart.
	nameA, nameB := "shop-a", ""
	for i := 0; nameB == ""; i++ {
		if n := fmt.Sprintf("shop-b%d", i); store.Shard(n) == store.Shard(nameA) {
			nameB = n
		}
	}
	shard := store.Shard(nameA)
	create := func(name, cluster string) {
		t.Helper()
		_, err := ss.Create(ctx, store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic", Cluster: cluster,
			Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "r-" + name})
		if err != nil {
			t.Fatal(err)
		}
	}
	create(nameA, "") // the default cluster, a
	create(nameB, "b")
	idle(t, ss.Queues["a"])
	idle(t, ss.Queues["b"])
	revA, shardsA := pa.latest()
	revB, shardsB := pb.latest()
	if len(shardsA) != 1 || len(shardsB) != 1 {
		t.Fatalf("publishes: a %v, b %v; want one each", shardsA, shardsB)
	}

	// Cluster b's artifact and apply move b's store only.
	vb.SetShardSource(shard, revB, nil)
	vb.SetShardApply(shard, revB, nil)
	phase(t, tr, nameB, store.PhaseApplied)
	phase(t, tr, nameA, store.PhaseCommitted)
	// a's shard of the same name showing b's revision is no progress for a's store.
	va.SetShardSource(shard, revB, nil)
	phase(t, tr, nameA, store.PhaseCommitted)
	va.SetShardSource(shard, revA, nil)
	va.SetShardApply(shard, revA, nil)
	phase(t, tr, nameA, store.PhaseApplied)

	// Cluster a stops answering: its store is unknown, b's keeps its phase.
	va.SetConnected(false)
	if st := phase(t, tr, nameA, store.PhaseUnknown); st.ClusterConnected {
		t.Fatalf("%s: %+v shows its cluster connected", nameA, st)
	}
	if st := phase(t, tr, nameB, store.PhaseApplied); !st.ClusterConnected {
		t.Fatalf("%s: %+v shows its cluster not connected", nameB, st)
	}
	if va.Connected() || !vb.Connected() {
		t.Fatalf("connections: a %v b %v", va.Connected(), vb.Connected())
	}

	// A restart: each publisher adopts its artifact, Load files each store under
	// its own cluster.
	tr2 := status.New(status.Options{})
	defer tr2.Close()
	va2, vb2 := tr2.View("a"), tr2.View("b")
	va2.SetConnected(true)
	vb2.SetConnected(true)
	va2.Published(shard, revA)
	vb2.Published(shard, revB)
	n, err := status.Service{Stores: svc, T: tr2, ShardOf: store.Shard, Queues: map[string]*status.Queue{}}.Load(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Load: %d stores, %v", n, err)
	}
	vb2.SetShardSource(shard, revB, nil)
	vb2.SetShardApply(shard, revB, nil)
	phase(t, tr2, nameB, store.PhaseApplied)
	phase(t, tr2, nameA, store.PhaseCommitted)
}
