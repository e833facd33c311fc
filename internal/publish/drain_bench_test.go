package publish_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// BenchmarkQueueDrain: how long the publish queue takes to publish a burst's dirty
// shards (one commit of drainShards stores, each in its own shard) through the real
// publisher to the real API server of the test environment (Flux's controllers
// running), with one worker — one shard at a time, as the publisher allowed before —
// against 4 and 8 at once, the rounds alternating in the same run.
func BenchmarkQueueDrain(b *testing.B) {
	const drainShards, rounds = 100, 3
	env := testenv.StartT(b, testenv.Options{})
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: b.TempDir() + "/clone.git"})
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	w, err := kube.New(kube.Config{Rest: env.Config, FluxNamespace: "flux-system", ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
		return render.ShardKustomization(render.DefaultShardLayout(), shard)
	}}, nopSink{})
	if err != nil {
		b.Fatal(err)
	}
	tr := status.New(status.Options{})
	defer tr.Close()
	p, err := publish.New(publish.Config{Source: repo, Cluster: w, FleetCluster: store.DefaultCluster, Dir: b.TempDir(),
		URL: "http://127.0.0.1:9", Interval: time.Hour, OnPublish: tr.Published})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	taken := map[string]bool{}
	n := 0
	burst := func() []gitrepo.Change {
		var cs []gitrepo.Change
		for len(cs) < drainShards {
			name := fmt.Sprintf("drain-%d", n)
			n++
			if s := store.Shard(name); !taken[s] {
				taken[s] = true
				cs = append(cs, change(b, name, false))
			}
		}
		return cs
	}
	drain := map[int]time.Duration{}
	for b.Loop() {
		for range rounds {
			for _, workers := range []int{1, 4, 8} {
				cs := burst()
				commit := submit(b, repo, cs...)
				q := status.NewQueue(status.QueueConfig{T: tr, Publish: p.Publish, Workers: workers})
				t0 := time.Now()
				for _, c := range cs {
					q.Add(store.Shard(c.Store), c.Store, commit)
				}
				if err := q.Idle(ctx); err != nil {
					b.Fatal(err)
				}
				drain[workers] += time.Since(t0)
				q.Close(ctx)
			}
		}
	}
	one := drain[1].Seconds() / rounds / float64(b.N)
	b.ReportMetric(one, "s/drain-1-worker")
	for _, w := range []int{4, 8} {
		many := drain[w].Seconds() / rounds / float64(b.N)
		b.ReportMetric(many, fmt.Sprintf("s/drain-%d-workers", w))
		b.ReportMetric(many/one, fmt.Sprintf("x/%d-workers-vs-1", w))
	}
}
