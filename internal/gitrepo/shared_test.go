package gitrepo

import (
	"context"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// A store's shared chart source lands in the commit of the store that first uses it;
// a second store of the same engine and version leaves it as it is; another version
// adds a second file beside it; a path outside the cluster's chart sources is refused.
func TestSharedFiles(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	src := func(v string) File {
		return File{Path: store.ChartSourcesDir("local") + "/woocommerce-" + v + ".yaml",
			Content: []byte("kind: HelmChart\nmetadata:\n  name: woocommerce-" + v + "\n")}
	}
	a := change("local", "shop-a", ActionCreate, 1, "req-a")
	a.Shared = []File{src("1.0.0")}
	first := mustOK(t, r.Submit(ctx, a))
	p := store.ChartSourcesDir("local") + "/woocommerce-1.0.0.yaml"
	if got := runGit(t, rm.bare, "log", "--format=%H", "main", "--", p); got != first.Commit {
		t.Fatalf("commits touching %s: %q, want only the first store's %s", p, got, first.Commit)
	}
	if got := runGit(t, rm.bare, "show", "main:"+p); got != "kind: HelmChart\nmetadata:\n  name: woocommerce-1.0.0" {
		t.Fatalf("%s on the remote:\n%s", p, got)
	}

	b := change("local", "shop-b", ActionCreate, 1, "req-b")
	b.Shared = []File{src("1.0.0")}
	second := mustOK(t, r.Submit(ctx, b))
	if got := runGit(t, rm.bare, "diff", "--name-only", first.Commit, second.Commit); got != store.Dir("local", "shop-b")+"/helmrelease.yaml\n"+
		store.Dir("local", "shop-b")+"/kustomization.yaml\n"+store.Dir("local", "shop-b")+"/namespace.yaml\n"+
		store.Dir("local", "shop-b")+"/policy.yaml\n"+store.Dir("local", "shop-b")+"/rbac.yaml" {
		t.Fatalf("the second store's commit changed more than its folder:\n%s", got)
	}

	tree, _, err := r.Store(ctx, store.Dir("local", "shop-b"))
	if err != nil {
		t.Fatal(err)
	}
	up := change("local", "shop-b", ActionUpdate, 2, "req-b2")
	up.Expect = ExpectTree(tree)
	up.Shared = []File{src("1.1.0")}
	mustOK(t, r.Submit(ctx, up))
	if got := runGit(t, rm.bare, "ls-tree", "--name-only", "main:"+store.ChartSourcesDir("local")); got != "woocommerce-1.0.0.yaml\nwoocommerce-1.1.0.yaml" {
		t.Fatalf("chart sources after the upgrade:\n%s", got)
	}

	bad := change("local", "shop-c", ActionCreate, 1, "req-c")
	bad.Shared = []File{{Path: store.Dir("local", "shop-a") + "/namespace.yaml", Content: []byte("x")}}
	wantErr(t, r.Submit(ctx, bad), ErrInvalid)
	bad.Shared = []File{{Path: store.ChartSourcesDir("other") + "/x.yaml", Content: []byte("x")}}
	wantErr(t, r.Submit(ctx, bad), ErrInvalid)
}
