package gitrepo

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// sourcePath is the shared chart source of woocommerce version v in cluster local.
func sourcePath(v string) string {
	return store.ChartSourcesDir("local") + "/woocommerce-" + v + ".yaml"
}

// onVersion makes c's store use the shared chart source of version v, as the
// lifecycle's change for an active store does: its HelmRelease names the source
// (spec.chartRef), and Shared carries it.
func onVersion(c Change, v string) Change {
	files := make([]File, 0, len(c.Files))
	for _, f := range c.Files {
		if f.Path == "helmrelease.yaml" {
			f.Content = []byte(fmt.Sprintf("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: %s\n  annotations:\n    storefleet.io/version: %s\nspec:\n  chartRef:\n    kind: HelmChart\n    name: woocommerce-%s\n    namespace: flux-system\n  values:\n    store:\n      name: %s\n", c.Store, v, v, c.Store))
		}
		files = append(files, f)
	}
	c.Files = files
	c.Shared = []File{{Path: sourcePath(v), Content: []byte("kind: HelmChart\nmetadata:\n  name: woocommerce-" + v + "\n")}}
	return c
}

func hasSource(t *testing.T, rm remote, rev, v string) bool {
	t.Helper()
	out, err := gitCmd(rm.bare, "cat-file", "-e", rev+":"+sourcePath(v))
	if err != nil && strings.TrimSpace(out) != "" && !strings.Contains(out, "does not exist") && !strings.Contains(out, "Not a valid object") {
		t.Logf("git cat-file: %s", out)
	}
	return err == nil
}

// The commit that leaves no store using a source removes it, and only that one: a
// delete while another store of the version is live keeps it, the upgrade of the
// last store off the version removes it in the upgrade's own commit, a version
// whose name is a prefix of another's is not kept alive by it, the last source of
// the folder leaves the folder in Git, and a later create of the version writes
// the source again.
func TestUnusedSharedRemoved(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()

	mustOK(t, r.Submit(ctx, onVersion(change("local", "shop-a", ActionCreate, 1, "a1"), "1.0")))
	mustOK(t, r.Submit(ctx, onVersion(change("local", "shop-b", ActionCreate, 1, "b1"), "1.0")))
	mustOK(t, r.Submit(ctx, onVersion(change("local", "shop-c", ActionCreate, 1, "c1"), "1.0.1")))

	del := change("local", "shop-a", ActionDelete, 1, "a2")
	del.Unshared = []string{sourcePath("1.0")}
	res := mustOK(t, r.Submit(ctx, del))
	if len(res.Unshared) != 0 || !hasSource(t, rm, "main", "1.0") {
		t.Fatalf("deleting shop-a removed %v; shop-b still uses woocommerce-1.0", res.Unshared)
	}

	up := onVersion(change("local", "shop-b", ActionUpdate, 2, "b2"), "1.1")
	up.Unshared = []string{sourcePath("1.0")}
	res = mustOK(t, r.Submit(ctx, up))
	if len(res.Unshared) != 1 || res.Unshared[0] != sourcePath("1.0") {
		t.Fatalf("the upgrade of the last store on 1.0 removed %v, want %s", res.Unshared, sourcePath("1.0"))
	}
	if hasSource(t, rm, "main", "1.0") {
		t.Fatalf("%s is still in the fleet after its last store was upgraded", sourcePath("1.0"))
	}
	if !hasSource(t, rm, res.Commit+"^", "1.0") || !hasSource(t, rm, "main", "1.1") || !hasSource(t, rm, "main", "1.0.1") {
		t.Fatalf("the upgrade's commit %s did not remove exactly woocommerce-1.0.yaml", res.Commit)
	}

	for _, name := range []string{"shop-b", "shop-c"} {
		d := change("local", name, ActionDelete, 3, name+"-d")
		d.Unshared = []string{sourcePath("1.1"), sourcePath("1.0.1")}
		mustOK(t, r.Submit(ctx, d))
	}
	if got := runGit(t, rm.bare, "ls-tree", "--name-only", "main:"+store.ChartSourcesDir("local")); got != keepFile {
		t.Fatalf("chart sources once no store is live: %q, want only %s (the folder Flux applies stays)", got, keepFile)
	}

	mustOK(t, r.Submit(ctx, onVersion(change("local", "shop-d", ActionCreate, 1, "d1"), "1.0")))
	if !hasSource(t, rm, "main", "1.0") {
		t.Fatal("a create of a version whose source was removed did not write it again")
	}

	bad := change("local", "shop-d", ActionDelete, 1, "d2")
	bad.Unshared = []string{store.Dir("local", "shop-d") + "/helmrelease.yaml"}
	wantErr(t, r.Submit(ctx, bad), ErrInvalid)
}

// A create of a version racing the removal of its last store must leave the source
// in the fleet, whichever lands first: the pair is sent concurrently, through one
// writer (the same commit or one after the other) and through two writers on the
// same remote (two replicas: the loser of the compare-and-swap builds again on the
// winner's commit), many rounds each.
func TestUnsharedRacesCreate(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("writers=%d", replicas), func(t *testing.T) {
			rm := newRemote(t, "path")
			w1 := open(t, rm)
			w2 := w1
			if replicas == 2 {
				w2 = open(t, rm)
			}
			ctx := context.Background()
			removed := 0
			for i := range 12 {
				v := fmt.Sprintf("2.%d", i)
				last, next := fmt.Sprintf("last-%d", i), fmt.Sprintf("next-%d", i)
				mustOK(t, w1.Submit(ctx, onVersion(change("local", last, ActionCreate, 1, last+"-c"), v)))
				del := change("local", last, ActionDelete, 1, last+"-d")
				del.Unshared = []string{sourcePath(v)}
				// Both writers start from the same tip, and take turns at which
				// one deletes.
				dw, cw := w1, w2
				if i%2 == 1 {
					dw, cw = w2, w1
				}
				for _, w := range []*Repo{w1, w2} {
					if err := w.fetch(ctx); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				var dres, cres Result
				wg.Add(2)
				go func() { defer wg.Done(); dres = dw.Submit(ctx, del) }()
				go func() {
					defer wg.Done()
					cres = cw.Submit(ctx, onVersion(change("local", next, ActionCreate, 1, next+"-c"), v))
				}()
				wg.Wait()
				mustOK(t, dres)
				mustOK(t, cres)
				if !hasSource(t, rm, "main", v) {
					t.Fatalf("round %d: %s is gone although store %s uses it (delete %s removed %v, create %s)",
						i, sourcePath(v), next, dres.Commit, dres.Unshared, cres.Commit)
				}
				removed += len(dres.Unshared)
			}
			t.Logf("the delete removed the source (and the create wrote it again) in %d of 12 rounds", removed)
		})
	}
}

// The writer remembers what each store folder names, by its tree; a folder read
// before a source existed is read again when that source's removal is decided. A
// store written without its source (by hand, say) that names 6.0 keeps 6.0 once
// another store brought the source, although the writer had read that folder when
// no 6.0 existed.
func TestUnsharedReadsFolderAgainForNewName(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	hand := onVersion(change("local", "by-hand", ActionCreate, 1, "h1"), "6.0")
	hand.Shared = nil
	mustOK(t, r.Submit(ctx, hand))
	mustOK(t, r.Submit(ctx, onVersion(change("local", "old", ActionCreate, 1, "o1"), "5.0")))
	del := change("local", "old", ActionDelete, 1, "o2")
	del.Unshared = []string{sourcePath("5.0")}
	if res := mustOK(t, r.Submit(ctx, del)); len(res.Unshared) != 1 {
		t.Fatalf("deleting the last 5.0 store removed %v", res.Unshared)
	}

	mustOK(t, r.Submit(ctx, onVersion(change("local", "new", ActionCreate, 1, "n1"), "6.0")))
	del = change("local", "new", ActionDelete, 1, "n2")
	del.Unshared = []string{sourcePath("6.0")}
	if res := mustOK(t, r.Submit(ctx, del)); len(res.Unshared) != 0 || !hasSource(t, rm, "main", "6.0") {
		t.Fatalf("the delete removed %v although store by-hand names woocommerce-6.0", res.Unshared)
	}
}
