package fleet_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// A store's create and its version upgrade commit, in the store's own commit, the
// chart source its engine × version shares (render.SharedChartSource); a second store
// of the same version leaves it untouched; the upgrade keeps the source the other
// store still uses, and the delete of the last store of a version removes that
// version's source in the delete's own commit, and nothing else.
func TestSharedChartSourceCommitted(t *testing.T) {
	rm := newFleetRemote(t)
	rep := openReplica(t, rm, nil)
	ctx := context.Background()
	src := store.ChartSourcesDir(store.DefaultCluster) + "/" + render.ChartSourceName(store.WooCommerce, "0.1.0") + ".yaml"
	a, b := shop("shop-a", ""), shop("shop-b", "")
	a.Version, b.Version = "0.1.0", "0.1.0"

	if _, err := rep.svc.Create(ctx, a, meta()); err != nil {
		t.Fatal(err)
	}
	first := remoteHead(t, rm)
	want, err := render.SharedChartSource(a, render.LocalOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, rm.bare, "show", "main:"+src); got+"\n" != string(want.Content) {
		t.Fatalf("%s after the first store:\n%s\nwant:\n%s", src, got, want.Content)
	}
	if _, err := rep.svc.Create(ctx, b, meta()); err != nil {
		t.Fatal(err)
	}
	if got := git(t, rm.bare, "log", "--format=%H", "main", "--", src); got != first {
		t.Fatalf("commits touching %s: %q, want only the first store's %s", src, got, first)
	}

	if _, err := rep.svc.Update(ctx, "shop-b", func(s store.Store) (store.Store, error) {
		s.Version = "0.1.1"
		return s, nil
	}, meta()); err != nil {
		t.Fatal(err)
	}
	upgraded := remoteHead(t, rm)
	if got := git(t, rm.bare, "diff", "--name-only", first, upgraded, "--", store.ChartSourcesDir(store.DefaultCluster)); got != store.ChartSourcesDir(store.DefaultCluster)+"/woocommerce-0.1.1.yaml" {
		t.Fatalf("chart sources the upgrade added: %q", got)
	}

	if _, err := rep.svc.Delete(ctx, "shop-a", false, meta()); err != nil {
		t.Fatal(err)
	}
	if got := git(t, rm.bare, "diff", "--name-status", upgraded, "main", "--", store.ChartSourcesDir(store.DefaultCluster)); got != "D\t"+src {
		t.Fatalf("chart sources the delete of the last 0.1.0 store changed: %q, want %s removed", got, src)
	}
	if got := git(t, rm.bare, "rev-list", "--count", upgraded+"..main"); got != "1" {
		t.Fatalf("the delete took %s commits", got)
	}

	// The last source gone, the folder stays (Flux's Kustomization of it prunes
	// only a path that exists).
	if _, err := rep.svc.Delete(ctx, "shop-b", false, meta()); err != nil {
		t.Fatal(err)
	}
	if got := git(t, rm.bare, "ls-tree", "--name-only", "main:"+store.ChartSourcesDir(store.DefaultCluster)); got != ".gitkeep" {
		t.Fatalf("chart sources once no store is live: %q", got)
	}
}

// The last two stores of a version deleted at the same time leave no source
// behind: each delete names the source as one it may leave unused, whatever the
// other is doing, and the writer decides on the tree it pushes.
func TestConcurrentLastDeletesRemoveSource(t *testing.T) {
	rm := newFleetRemote(t)
	rep := openReplica(t, rm, nil)
	ctx := context.Background()
	for i := range 6 {
		v := fmt.Sprintf("0.2.%d", i)
		src := store.ChartSourcesDir(store.DefaultCluster) + "/" + render.ChartSourceName(store.WooCommerce, v) + ".yaml"
		names := []string{fmt.Sprintf("pair-%d-a", i), fmt.Sprintf("pair-%d-b", i)}
		for _, n := range names {
			s := shop(n, "")
			s.Version = v
			if _, err := rep.svc.Create(ctx, s, meta()); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(names))
		for j, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = rep.svc.Delete(ctx, n, false, meta())
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command("git", "-C", rm.bare, "cat-file", "-e", "main:"+src).CombinedOutput(); err == nil {
			t.Fatalf("round %d: %s is still in the fleet after both stores of %s were deleted (%s)", i, src, v, out)
		}
	}
}
