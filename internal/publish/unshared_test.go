package publish_test

import (
	"context"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
)

// A commit that removes a chart source no store uses any more changes the
// cluster's chart-sources folder like one that adds a source: the publisher asks
// Flux to fetch it, so that the chart-sources Kustomization prunes the object
// (shown on the real control plane by internal/status/e2e
// TestUnusedChartSourcePruned). The last source leaves the folder in place.
func TestFetchSourcesAfterRemoval(t *testing.T) {
	ctx := context.Background()
	repo := openClone(t, fleetRemote(t))
	dir := store.ChartSourcesDir(store.DefaultCluster)
	f := &fetches{}
	p, err := publish.New(publish.Config{Source: repo, Cluster: &memCluster{}, FleetCluster: store.DefaultCluster,
		Dir: t.TempDir(), URL: "http://unused", Interval: time.Hour, ChartSourcesDir: dir, FetchSources: f.fetch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	publishAndCount := func(step, name string, want int) {
		t.Helper()
		if _, err := p.Publish(ctx, store.Shard(name)); err != nil {
			t.Fatal(err)
		}
		if got := f.count(); got != want {
			t.Fatalf("%s: %d fetch requests, want %d", step, got, want)
		}
	}

	// The store's files (a retained store's, here) do not name the source, so the
	// writer finds no user of it once the store's change names it as unshared.
	src := dir + "/woocommerce-0-9-0.yaml"
	c := change(t, "only", false)
	c.Shared = []gitrepo.File{{Path: src, Content: []byte("kind: HelmChart # 0.9.0\n")}}
	submit(t, repo, c)
	publishAndCount("the first store of a version", "only", 1)

	tree, _, err := repo.Store(ctx, c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	del := change(t, "only", false)
	del.Action, del.RequestID, del.Expect = gitrepo.ActionDelete, "del-only", gitrepo.ExpectTree(tree)
	del.Files = append(del.Files, gitrepo.File{Path: "note.txt", Content: []byte("deleted\n")})
	del.Unshared = []string{src}
	res := repo.Submit(ctx, del)
	if res.Err != nil || len(res.Unshared) != 1 {
		t.Fatalf("the delete of the version's last store: %+v, want %s removed", res, src)
	}
	publishAndCount("the removal of its source", "only", 2)

	trees, err := repo.Subtrees(ctx, res.Commit, store.ChartSourcesRoot)
	if err != nil {
		t.Fatal(err)
	}
	if trees[store.DefaultCluster] == "" {
		t.Fatalf("%s is gone from the fleet: Flux's Kustomization of it would prune nothing", dir)
	}
}
