package publish_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
)

// memCluster keeps published artifacts in memory: this test is about when the
// publisher asks for a fetch, not about the cluster (TestPublisher has the real one).
type memCluster struct {
	mu sync.Mutex
	as map[string]publish.Artifact
}

func (c *memCluster) PublishArtifact(_ context.Context, shard string, a publish.Artifact) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.as == nil {
		c.as = map[string]publish.Artifact{}
	}
	c.as[shard] = a
	return nil
}

func (c *memCluster) PublishedArtifacts(context.Context) (map[string]publish.Artifact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]publish.Artifact{}
	for k, v := range c.as {
		out[k] = v
	}
	return out, nil
}

// fetches counts FetchSources calls and fails them while failing is set.
type fetches struct {
	mu      sync.Mutex
	calls   int
	failing bool
}

func (f *fetches) fetch(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failing {
		return errors.New("the API server refused")
	}
	return nil
}

func (f *fetches) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fetches) fail(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = on
}

// The publisher asks Flux to fetch the fleet once per change of the cluster's
// chart-sources folder: not for a commit that leaves the folder as it is, not for
// another cluster's folder, again after a request that failed, and once when a new
// leader starts on a fleet that has the folder.
func TestFetchSourcesOncePerChange(t *testing.T) {
	ctx := context.Background()
	repo := openClone(t, fleetRemote(t))
	dir := store.ChartSourcesDir(store.DefaultCluster)
	f := &fetches{}
	newPub := func() *publish.Publisher {
		p, err := publish.New(publish.Config{Source: repo, Cluster: &memCluster{}, FleetCluster: store.DefaultCluster,
			Dir: t.TempDir(), URL: "http://unused", Interval: time.Hour, ChartSourcesDir: dir, FetchSources: f.fetch})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return p
	}
	withSource := func(name, file, content string) gitrepo.Change {
		c := change(t, name, false)
		c.Shared = []gitrepo.File{{Path: file, Content: []byte(content)}}
		return c
	}
	var p *publish.Publisher
	publishAndCount := func(step, name string, want int) {
		t.Helper()
		if _, err := p.Publish(ctx, store.Shard(name)); err != nil {
			t.Fatal(err)
		}
		if got := f.count(); got != want {
			t.Fatalf("%s: %d fetch requests, want %d", step, got, want)
		}
	}
	p = newPub()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if f.count() != 0 {
		t.Fatalf("a fleet without %s asked for %d fetches at start", dir, f.count())
	}

	submit(t, repo, change(t, "plain", false))
	publishAndCount("a store and no chart source", "plain", 0)

	first := dir + "/woocommerce-0-1-0.yaml"
	submit(t, repo, withSource("first", first, "kind: HelmChart # 0.1.0\n"))
	publishAndCount("the first store of a version", "first", 1)
	publishAndCount("the same shard again", "first", 1)

	submit(t, repo, withSource(otherShard("first"), first, "kind: HelmChart # 0.1.0\n"))
	publishAndCount("a second store of that version", otherShard("first"), 1)

	other := store.ChartSourcesDir("elsewhere") + "/woocommerce-0-1-0.yaml"
	c := change(t, "faraway", false)
	c.Cluster, c.Dir = "elsewhere", store.Dir("elsewhere", "faraway")
	c.Shared = []gitrepo.File{{Path: other, Content: []byte("kind: HelmChart # elsewhere\n")}}
	submit(t, repo, c)
	publishAndCount("another cluster's chart source", "plain", 1)

	f.fail(true)
	submit(t, repo, withSource("second", dir+"/woocommerce-0-1-1.yaml", "kind: HelmChart # 0.1.1\n"))
	publishAndCount("a new version while the API server refuses", "second", 2)
	f.fail(false)
	publishAndCount("the next publish after the refusal", "plain", 3)
	publishAndCount("once it was taken", "plain", 3)

	// A new leader cannot know whether the last one asked for this tree.
	p.Stop()
	p = newPub()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if f.count() != 4 {
		t.Fatalf("a new leader asked %d times at start, want once", f.count()-3)
	}
	publishAndCount("the new leader's publish", "plain", 4)
}
