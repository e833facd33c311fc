package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/store"
)

var kinds = []string{"http", "path"}

func TestRoundTrip(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			r := open(t, rm)
			ctx := context.Background()

			created := mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-1")))
			if created.Commit != remoteHead(t, rm) {
				t.Fatalf("create commit %s, remote head %s", created.Commit, remoteHead(t, rm))
			}
			dir := store.Dir("local", "shop")
			tree, files, err := r.Store(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			if tree != created.Tree || len(files) != 5 {
				t.Fatalf("Store: tree %s (want %s), %d files", tree, created.Tree, len(files))
			}
			// The git CLI sees the same folder.
			if got := runGit(t, rm.bare, "rev-parse", "main:"+dir); got != tree {
				t.Fatalf("git rev-parse main:%s = %s, want %s", dir, got, tree)
			}
			if got := runGit(t, rm.bare, "show", "main:"+dir+"/helmrelease.yaml"); !strings.Contains(got, "replicas: 1") {
				t.Fatalf("helmrelease.yaml on the remote:\n%s", got)
			}
			// The skeleton is untouched.
			if got := runGit(t, rm.bare, "show", "main:README.md"); got != "# Fleet" {
				t.Fatalf("README.md = %q", got)
			}

			wantErr(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-1b")), ErrExists)

			up := change("local", "shop", ActionUpdate, 2, "req-2")
			up.Expect = ExpectTree(tree)
			updated := mustOK(t, r.Submit(ctx, up))
			stale := change("local", "shop", ActionUpdate, 3, "req-3")
			stale.Expect = ExpectTree(tree)
			wantErr(t, r.Submit(ctx, stale), ErrConflict)

			// No-op: same content again makes no commit.
			head := remoteHead(t, rm)
			same := mustOK(t, r.Submit(ctx, change("local", "shop", ActionUpdate, 2, "req-4")))
			if !same.NoOp || remoteHead(t, rm) != head || same.Commit != head {
				t.Fatalf("no-op update: %+v, remote head %s -> %s", same, head, remoteHead(t, rm))
			}

			// An authenticated subject as the actor, for someone it acts for, in a tenant.
			delChange := change("local", "shop", ActionDelete, 2, "req-5")
			delChange.Tenant, delChange.Actor, delChange.OnBehalfOf = "acme", oidcSubject, "system:serviceaccount:ci:deployer"
			del := mustOK(t, r.Submit(ctx, delChange))
			if out, err := gitCmd(rm.bare, "cat-file", "-e", "main:"+dir+"/helmrelease.yaml"); err == nil {
				t.Fatalf("helmrelease.yaml still there after delete: %s", out)
			}
			if got := runGit(t, rm.bare, "rev-parse", "main:"+dir+"/namespace.yaml"); got == "" {
				t.Fatal("namespace.yaml gone after delete")
			}
			purged := mustOK(t, r.Submit(ctx, change("local", "shop", ActionPurge, 0, "req-6")))
			if out, err := gitCmd(rm.bare, "cat-file", "-e", "main:"+dir); err == nil {
				t.Fatalf("folder still there after purge: %s", out)
			}
			// The now-empty shard folder is gone too, the skeleton's stores/local stays.
			if out, err := gitCmd(rm.bare, "cat-file", "-e", "main:stores/local/"+store.Shard("shop")); err == nil {
				t.Fatalf("empty shard left behind: %s", out)
			}
			runGit(t, rm.bare, "cat-file", "-e", "main:stores/local/.keep")
			wantErr(t, r.Submit(ctx, change("local", "shop", ActionUpdate, 1, "req-7")), ErrNotFound)

			// Trailers, read by git itself.
			log := runGit(t, rm.bare, "log", "--format=%H%n%(trailers:key=Store,key=Action,key=Request-Id,valueonly,separator=%x2C)", "main")
			for _, want := range []string{"shop,purge,req-6", "shop,delete,req-5", "shop,update,req-2", "shop,create,req-1"} {
				if !strings.Contains(log, want) {
					t.Errorf("git log trailers lack %q:\n%s", want, log)
				}
			}
			if got := runGit(t, rm.bare, "log", "--format=%H", "--grep=^Request-Id: req-2$", "main"); got != updated.Commit {
				t.Errorf("git log --grep Request-Id: req-2 = %q, want %s", got, updated.Commit)
			}
			msg := runGit(t, rm.bare, "log", "-1", "--format=%B", del.Commit)
			parsed := runGitStdin(t, rm.bare, msg, "interpret-trailers", "--parse")
			for _, want := range []string{"Store: shop\n", "Action: delete\n", "Cluster: local\n", "Tenant: acme\n",
				"Actor: " + oidcSubject + "\n", "On-Behalf-Of: system:serviceaccount:ci:deployer\n", "Request-Id: req-5\n"} {
				if !strings.Contains(parsed, want) {
					t.Errorf("interpret-trailers --parse lacks %q:\n%s", want, parsed)
				}
			}
			if a := runGit(t, rm.bare, "log", "-1", "--format=%an <%ae>", purged.Commit); a != "Storefleet Test <writer@example.com>" {
				t.Errorf("author %q", a)
			}

			// History of the folder, newest first, trailers parsed.
			hist, err := r.History(ctx, dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			var acts []string
			for _, c := range hist {
				if len(c.Changes) != 1 {
					t.Fatalf("commit %s: changes %+v", c.Hash, c.Changes)
				}
				acts = append(acts, c.Changes[0].Action+":"+c.Changes[0].RequestID)
			}
			if got, want := strings.Join(acts, " "), "purge:req-6 delete:req-5 update:req-2 create:req-1"; got != want {
				t.Fatalf("History = %s, want %s", got, want)
			}
			if d := hist[1].Changes[0]; d.Tenant != "acme" || d.Actor != oidcSubject || d.OnBehalfOf != "system:serviceaccount:ci:deployer" {
				t.Fatalf("delete's trailers read back as %+v", d)
			}
			if c := hist[3].Changes[0]; c.Tenant != "" || c.OnBehalfOf != "" {
				t.Fatalf("a change without tenant or on-behalf-of reads back as %+v", c)
			}
			if hist[0].Tree != "" || hist[3].Tree != created.Tree || hist[3].Changes[0].Actor != "alice@example.com" {
				t.Fatalf("History details: %+v", hist)
			}
		})
	}
}

func runGitStdin(t testing.TB, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := gitExec(dir, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestListStoresAndFreshReplica(t *testing.T) {
	rm := newRemote(t, "http")
	r := open(t, rm)
	ctx := context.Background()
	var changes []Change
	for i := 0; i < 30; i++ {
		cl := []string{"local", "edge"}[i%2]
		changes = append(changes, change(cl, fmt.Sprintf("shop-%02d", i), ActionCreate, 1, fmt.Sprintf("r-%d", i)))
	}
	for _, res := range r.SubmitAll(ctx, changes) {
		mustOK(t, res)
	}
	if n := runGit(t, rm.bare, "rev-list", "--count", "main"); n != "2" {
		t.Fatalf("30 changes submitted together made %s commits (want seed + 1)", n)
	}
	// A fresh replica, on disk this time, sees the same stores.
	r2 := open(t, rm, func(o *Options) { o.Dir = filepath.Join(t.TempDir(), "clone") })
	for _, rr := range []*Repo{r, r2} {
		list, err := rr.ListStores(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 30 {
			t.Fatalf("ListStores: %d stores", len(list))
		}
		for _, s := range list {
			if s.Dir != store.Dir(s.Cluster, s.Name) {
				t.Fatalf("store %+v: dir", s)
			}
			if got := runGit(t, rm.bare, "rev-parse", "main:"+s.Dir); got != s.Tree {
				t.Fatalf("store %s: tree %s, git says %s", s.Name, s.Tree, got)
			}
		}
	}
}

func TestIdempotency(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	first := mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-1")))
	again := mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-1")))
	if !again.Duplicate || again.Commit != first.Commit {
		t.Fatalf("replay: %+v, first %+v", again, first)
	}
	// Twice in one commit.
	res := r.SubmitAll(ctx, []Change{change("local", "other", ActionCreate, 1, "req-2"), change("local", "other", ActionCreate, 1, "req-2")})
	mustOK(t, res[0])
	if !res[1].Duplicate || res[1].Commit != res[0].Commit {
		t.Fatalf("in-batch replay: %+v", res)
	}
	// A fresh replica finds the Request-Id in history trailers, even for a different
	// content (the request is the unit, not the bytes).
	r2 := open(t, rm)
	dup := mustOK(t, r2.Submit(ctx, change("local", "shop", ActionUpdate, 7, "req-1")))
	if !dup.Duplicate || dup.Commit != first.Commit {
		t.Fatalf("replay on a fresh replica: %+v", dup)
	}
	if n := runGit(t, rm.bare, "rev-list", "--count", "main"); n != "3" {
		t.Fatalf("%s commits, want seed + 2", n)
	}
}

func TestDeletionGuard(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm, func(o *Options) { o.MaxPurges = 2 })
	ctx := context.Background()
	var creates []Change
	for i := 0; i < 6; i++ {
		creates = append(creates, change("local", fmt.Sprintf("shop-%d", i), ActionCreate, 1, ""))
	}
	for _, res := range r.SubmitAll(ctx, creates) {
		mustOK(t, res)
	}
	head := remoteHead(t, rm)
	purge := func(i int, force bool) Change {
		c := change("local", fmt.Sprintf("shop-%d", i), ActionPurge, 0, "")
		c.Force = force
		return c
	}
	// Three purges in one commit, limit two: refused, and an update beside them lands.
	res := r.SubmitAll(ctx, []Change{purge(0, false), purge(1, false), purge(2, false), change("local", "shop-5", ActionUpdate, 2, "")})
	for i := 0; i < 3; i++ {
		wantErr(t, res[i], ErrTooManyDeletes)
	}
	mustOK(t, res[3])
	if got := runGit(t, rm.bare, "diff", "--name-only", head, "main"); got != store.Dir("local", "shop-5")+"/helmrelease.yaml" {
		t.Fatalf("commit beside refused purges changed: %q", got)
	}
	// Two are within the limit; forced ones pass any limit.
	for _, res := range r.SubmitAll(ctx, []Change{purge(0, false), purge(1, false)}) {
		mustOK(t, res)
	}
	for _, res := range r.SubmitAll(ctx, []Change{purge(2, true), purge(3, true), purge(4, true)}) {
		mustOK(t, res)
	}
	list, err := r.ListStores(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "shop-5" {
		t.Fatalf("after purges: %+v %v", list, err)
	}
	// Each commit removed exactly the folders it purged.
	for _, c := range strings.Fields(runGit(t, rm.bare, "rev-list", "main")) {
		removed := runGit(t, rm.bare, "diff-tree", "--no-commit-id", "-r", "--diff-filter=D", "--name-only", "--root", c)
		msg := runGit(t, rm.bare, "log", "-1", "--format=%B", c)
		for _, f := range strings.Fields(removed) {
			parts := strings.Split(f, "/")
			if len(parts) < 4 || !strings.Contains(msg, "Store: "+parts[3]+"\nAction: purge") && !strings.HasSuffix(f, "helmrelease.yaml") {
				t.Errorf("commit %s removed %s without purging it:\n%s", c, f, msg)
			}
		}
	}
}

func TestInvalidChangesAndNeighbours(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	mustOK(t, r.Submit(ctx, change("local", "taken", ActionCreate, 1, "")))
	bad := change("local", "x", ActionCreate, 1, "")
	bad.Dir = "stores/local/zz/x"
	badFile := change("local", "y", ActionCreate, 1, "")
	badFile.Files = append(badFile.Files, File{Path: "../escape.yaml", Content: []byte("x")})
	badActor := change("local", "z", ActionCreate, 1, "")
	badActor.Actor = "eve\nStore: victim"
	res := r.SubmitAll(ctx, []Change{
		bad, badFile, badActor,
		change("local", "taken", ActionCreate, 1, ""),    // exists
		change("local", "missing", ActionUpdate, 1, ""),  // not found
		change("local", "fine", ActionCreate, 1, "ok-1"), // goes through
	})
	for i := 0; i < 3; i++ {
		wantErr(t, res[i], ErrInvalid)
	}
	wantErr(t, res[3], ErrExists)
	wantErr(t, res[4], ErrNotFound)
	mustOK(t, res[5])
	if got := runGit(t, rm.bare, "log", "-1", "--format=%(trailers:key=Store,valueonly)", "main"); got != "fine" {
		t.Fatalf("last commit's stores: %q", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.Submit(ctx, change("local", "late", ActionCreate, 1, "")), ErrClosed)
}

func TestEmptyRemoteAndSeed(t *testing.T) {
	// A brand-new local repository seeded from the skeleton, as the embedded default.
	dir := filepath.Join(t.TempDir(), "fleet.git")
	c1, err := Seed(context.Background(), dir, "", skeleton, Signature{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Seed(context.Background(), dir, "", skeleton, Signature{})
	if err != nil || c1 != c2 {
		t.Fatalf("second Seed: %s %v, first %s", c2, err, c1)
	}
	defer fsck(t, dir)
	if got := runGit(t, dir, "show", "main:clusters/local/fleet.yaml"); got != "kind: Kustomization" {
		t.Fatalf("seeded file: %q", got)
	}
	r := open(t, remote{url: dir, bare: dir})
	mustOK(t, r.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "")))

	// An empty remote (no commits at all): the first commit creates the branch.
	empty := filepath.Join(t.TempDir(), "empty.git")
	runGit(t, filepath.Dir(empty), "init", "-q", "--bare", "--initial-branch=main", empty)
	defer fsck(t, empty)
	re := open(t, remote{url: empty, bare: empty})
	if _, err := re.Head(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Head on empty: %v", err)
	}
	res := mustOK(t, re.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "")))
	if got := runGit(t, empty, "rev-parse", "main"); got != res.Commit {
		t.Fatalf("empty remote head %s, commit %s", got, res.Commit)
	}
}

func TestHTTPBasicAuth(t *testing.T) {
	root := t.TempDir()
	srv, err := githttp.New(root)
	if err != nil {
		t.Fatal(err)
	}
	srv.Username, srv.Password = "fleet", "s3cret"
	bare, err := srv.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Seed(context.Background(), bare, "main", skeleton, Signature{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer fsck(t, bare)
	url := srv.URL() + "/fleet.git"
	if _, err := Open(context.Background(), Options{URL: url}); err == nil {
		t.Fatal("Open without credentials succeeded")
	}
	r, err := Open(context.Background(), Options{URL: url, Auth: Auth{Username: "fleet", Password: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := mustOK(t, r.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "")))
	if got := runGit(t, bare, "rev-parse", "main"); got != res.Commit {
		t.Fatalf("remote head %s, commit %s", got, res.Commit)
	}
}

func TestDiskCloneReopens(t *testing.T) {
	rm := newRemote(t, "http")
	dir := filepath.Join(t.TempDir(), "clone")
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	mustOK(t, r.Submit(context.Background(), change("local", "a", ActionCreate, 1, "")))
	r.Close()
	// Someone else writes meanwhile; the reopened clone fetches just that.
	other := open(t, rm)
	mustOK(t, other.Submit(context.Background(), change("local", "b", ActionCreate, 1, "")))
	r2 := open(t, rm, func(o *Options) { o.Dir = dir })
	list, err := r2.ListStores(context.Background())
	if err != nil || len(list) != 2 {
		t.Fatalf("reopened clone lists %+v %v", list, err)
	}
	mustOK(t, r2.Submit(context.Background(), change("local", "c", ActionCreate, 1, "")))
	fsck(t, dir)
}

// Two writers and an outside git push race on one remote: nothing is lost, the outside
// commits stay ancestors of the final head, and a contested store reports a conflict.
func TestRace(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			a, b := open(t, rm), open(t, rm)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			mustOK(t, a.Submit(ctx, change("local", "contested", ActionCreate, 1, "")))
			if err := b.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			tree, _, err := b.Store(ctx, store.Dir("local", "contested"))
			if err != nil {
				t.Fatal(err)
			}

			// An outside clone pushes commits with the git CLI throughout.
			work := t.TempDir()
			runGit(t, work, "clone", "-q", rm.url, "w")
			work = filepath.Join(work, "w")
			var outside []string
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						if i >= 3 {
							return
						}
					default:
					}
					if out, err := gitCmd(work, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("outside %d", i)); err != nil {
						t.Errorf("outside commit: %v %s", err, out)
						return
					}
					for try := 0; ; try++ {
						if _, err := gitCmd(work, "push", "-q", "origin", "HEAD:main"); err == nil {
							break
						}
						if try > 50 {
							t.Errorf("outside push never got through")
							return
						}
						if out, err := gitCmd(work, "pull", "-q", "--rebase", "origin", "main"); err != nil {
							t.Errorf("outside pull: %v %s", err, out)
							return
						}
					}
					h, _ := gitCmd(work, "rev-parse", "HEAD")
					outside = append(outside, strings.TrimSpace(h))
				}
			}()

			const perWriter, workers = 24, 6
			results := make(chan Result, 2*perWriter+2)
			names := make(chan string, 2*perWriter)
			var ww sync.WaitGroup
			for wi, w := range []*Repo{a, b} {
				for g := 0; g < workers; g++ {
					ww.Add(1)
					go func(wi, g int, w *Repo) {
						defer ww.Done()
						for i := g; i < perWriter; i += workers {
							name := fmt.Sprintf("w%d-shop-%02d", wi, i)
							res := w.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name))
							if res.Err == nil {
								names <- name
							}
							results <- res
						}
					}(wi, g, w)
				}
			}
			// Both writers update the contested store from the same read.
			var contested [2]Result
			ww.Add(2)
			for wi, w := range []*Repo{a, b} {
				go func(wi int, w *Repo) {
					defer ww.Done()
					c := change("local", "contested", ActionUpdate, 10+wi, "")
					c.Expect = ExpectTree(tree)
					contested[wi] = w.Submit(ctx, c)
				}(wi, w)
			}
			ww.Wait()
			close(stop)
			wg.Wait()
			close(results)
			close(names)
			for res := range results {
				if res.Err != nil {
					t.Errorf("create failed: %v", res.Err)
				}
			}
			ok := 0
			for _, res := range contested {
				switch {
				case res.Err == nil:
					ok++
				case errors.Is(res.Err, ErrConflict):
				default:
					t.Errorf("contested update: %v", res.Err)
				}
			}
			if ok != 1 {
				t.Errorf("contested update: %d succeeded (%v / %v), want exactly one and one ErrConflict", ok, contested[0].Err, contested[1].Err)
			}
			head := remoteHead(t, rm)
			for n := range names {
				runGit(t, rm.bare, "cat-file", "-e", head+":"+store.Dir("local", n)+"/helmrelease.yaml")
			}
			if len(outside) == 0 {
				t.Error("the outside pusher never pushed")
			}
			for _, h := range outside {
				if _, err := gitCmd(rm.bare, "merge-base", "--is-ancestor", h, head); err != nil {
					t.Errorf("outside commit %s is not an ancestor of %s", h, head)
				}
			}
			t.Logf("%s: %d commits, %d outside", kind, len(strings.Fields(runGit(t, rm.bare, "rev-list", "main"))), len(outside))
		})
	}
}

// A clone of a repacked (deltified) fleet reads back exactly what git stores, in memory
// and on disk (where the pack index is written by this package and checked by fsck).
func TestCloneOfDeltifiedPack(t *testing.T) {
	bare := fleetFixture(t, 300)
	packs, _ := filepath.Glob(filepath.Join(bare, "objects", "pack", "*.idx"))
	if len(packs) != 1 {
		t.Fatalf("fixture has %d packs, want 1", len(packs))
	}
	if out := runGit(t, bare, "verify-pack", "-v", packs[0]); !strings.Contains(out, "chain length = 2") {
		t.Fatalf("fixture pack has no delta chains; the test would not exercise delta resolution:\n%.500s", out)
	}
	for _, mode := range []string{"memory", "disk"} {
		t.Run(mode, func(t *testing.T) {
			srv, err := githttp.New(filepath.Dir(bare))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			dir := ""
			if mode == "disk" {
				dir = filepath.Join(t.TempDir(), "clone")
			}
			r := open(t, remote{url: srv.URL() + "/" + filepath.Base(bare)}, func(o *Options) { o.Dir = dir })
			ctx := context.Background()
			list, err := r.ListStores(ctx)
			if err != nil || len(list) != 300 {
				t.Fatalf("ListStores: %d %v", len(list), err)
			}
			for i, s := range list {
				if i%37 != 0 {
					continue
				}
				_, files, err := r.Store(ctx, s.Dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					if got := runGit(t, bare, "show", "main:"+s.Dir+"/"+f.Path); got != strings.TrimSpace(string(f.Content)) {
						t.Fatalf("%s/%s differs from git's", s.Dir, f.Path)
					}
				}
			}
			hist, err := r.History(ctx, list[0].Dir, 0)
			if err != nil || len(hist) != 1 || hist[0].Changes[0].Action != "create" {
				t.Fatalf("History: %+v %v", hist, err)
			}
			if dir != "" {
				fsck(t, dir)
			}
		})
	}
}

// A store changed by an outside git push after the writer last fetched: the writer's
// push loses the race, it fetches, and the changes to that store are conflicts (with an
// explicit tree and with "any") while a change to another store in the same commit lands.
func TestOutsideChangeIsAConflict(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			r := open(t, rm)
			ctx := context.Background()
			mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "")))
			tree, _, err := r.Store(ctx, store.Dir("local", "shop"))
			if err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(t.TempDir(), "w")
			runGit(t, filepath.Dir(work), "clone", "-q", rm.url, work)
			dir := filepath.Join(work, store.Dir("local", "shop"))
			runGit(t, work, "rm", "-q", filepath.Join(dir, "policy.yaml"))
			runGit(t, work, "commit", "-q", "-m", "hand edit")
			runGit(t, work, "push", "-q", "origin", "HEAD:main")
			outside := runGit(t, work, "rev-parse", "HEAD")

			explicit := change("local", "shop", ActionUpdate, 2, "")
			explicit.Expect = ExpectTree(tree)
			anyTree := change("local", "shop", ActionUpdate, 3, "")
			anyTree.Expect = ExpectAny()
			res := r.SubmitAll(ctx, []Change{explicit, change("local", "other", ActionCreate, 1, ""), anyTree})
			wantErr(t, res[0], ErrConflict)
			mustOK(t, res[1])
			wantErr(t, res[2], ErrConflict)
			if _, err := gitCmd(rm.bare, "merge-base", "--is-ancestor", outside, "main"); err != nil {
				t.Fatalf("outside commit lost")
			}
			if out, err := gitCmd(rm.bare, "cat-file", "-e", "main:"+store.Dir("local", "shop")+"/policy.yaml"); err == nil {
				t.Fatalf("outside edit overwritten: %s", out)
			}
		})
	}
}

// Concurrent submitters are grouped into fewer commits than changes, each change gets its
// own result, and each commit's trailers name exactly the changes reported in it.
func TestGroupCommit(t *testing.T) {
	rm := newRemote(t, "http")
	r := open(t, rm)
	ctx := context.Background()
	before := runGit(t, rm.bare, "rev-parse", "main")
	const n = 40
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			action := ActionCreate
			if i%10 == 9 {
				action = ActionUpdate // no such store: fails alone
			}
			results[i] = r.Submit(ctx, change("local", fmt.Sprintf("g-%02d", i), action, 1, fmt.Sprintf("g-req-%d", i)))
		}(i)
	}
	wg.Wait()
	byCommit := map[string][]string{}
	for i, res := range results {
		if i%10 == 9 {
			wantErr(t, res, ErrNotFound)
			continue
		}
		mustOK(t, res)
		byCommit[res.Commit] = append(byCommit[res.Commit], fmt.Sprintf("g-%02d", i))
	}
	commits := strings.Fields(runGit(t, rm.bare, "rev-list", before+"..main"))
	if len(commits) != len(byCommit) || len(commits) >= n-4 {
		t.Fatalf("%d commits for %d changes (%d distinct in results): no grouping", len(commits), n-4, len(byCommit))
	}
	for c, stores := range byCommit {
		got := strings.Fields(runGit(t, rm.bare, "log", "-1", "--format=%(trailers:key=Store,valueonly)", c))
		sort.Strings(got)
		sort.Strings(stores)
		if strings.Join(got, ",") != strings.Join(stores, ",") {
			t.Errorf("commit %s: trailers name %v, results say %v", c, got, stores)
		}
	}
	t.Logf("%d changes in %d commits", n-4, len(commits))
}
