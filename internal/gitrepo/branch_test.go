package gitrepo

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// TestProposalBranchThenEveryMergeKeepsHistory pushes a change to a branch of its
// own, leaves the fleet's branch alone, and merges it with real git the three ways
// GitHub does (merge commit, squash, rebase): the store's history names the
// request each time.
func TestProposalBranchThenEveryMergeKeepsHistory(t *testing.T) {
	for _, kind := range []string{"http", "path"} {
		for _, how := range []string{"merge", "squash", "rebase"} {
			t.Run(kind+"/"+how, func(t *testing.T) {
				rm := newRemote(t, kind)
				r := open(t, rm)
				mainBefore := remoteHead(t, rm)
				name := "shop-" + how
				c := change("default", name, ActionCreate, 1, "req-"+how)
				branch := "storefleet/" + name + "/req-" + how
				p, err := r.PushBranch(context.Background(), branch, c)
				if err != nil {
					t.Fatal(err)
				}
				if got := remoteHead(t, rm); got != mainBefore {
					t.Fatalf("the fleet branch moved: %s -> %s", mainBefore, got)
				}
				if got := runGit(t, rm.bare, "rev-parse", "refs/heads/"+branch); got != p.Commit {
					t.Fatalf("branch at %s, proposal says %s", got, p.Commit)
				}
				if got := runGit(t, rm.bare, "rev-parse", p.Commit+"^"); got != mainBefore || p.Base != mainBefore {
					t.Fatalf("proposal built on %s (says %s), main is %s", got, p.Base, mainBefore)
				}
				msg := runGit(t, rm.bare, "log", "-1", "--format=%B", p.Commit)
				for _, tr := range []string{"Request-Id: req-" + how, "Action: create", "Store: " + name, "Actor: alice@example.com"} {
					if !strings.Contains(msg, tr) {
						t.Fatalf("proposal commit lacks %q:\n%s", tr, msg)
					}
				}
				// Pushing the same proposal again is harmless (a retry).
				if p2, err := r.PushBranch(context.Background(), branch, c); err != nil || p2.Base != p.Base {
					t.Fatalf("second push: %+v, %v", p2, err)
				}

				mergeAsGitHub(t, rm.bare, branch, how)
				if err := r.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
				hist, err := r.History(context.Background(), store.Dir("default", name), 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(hist) != 1 {
					t.Fatalf("%d history entries after a %s merge, want 1: %+v", len(hist), how, hist)
				}
				recs := hist[0].Changes
				if len(recs) != 1 || recs[0].RequestID != "req-"+how || recs[0].Actor != "alice@example.com" || recs[0].Action != string(ActionCreate) {
					t.Fatalf("history after a %s merge lost the trailers: %+v", how, recs)
				}
			})
		}
	}
}

// TestProposalRebuiltOnMovedBase: after the fleet's branch moved, pushing the
// proposal again puts it on the new tip, so the pull request stays mergeable.
func TestProposalRebuiltOnMovedBase(t *testing.T) {
	rm := newRemote(t, "http")
	r := open(t, rm)
	c := change("default", "late", ActionCreate, 1, "req-late")
	p1, err := r.PushBranch(context.Background(), "storefleet/late/req-late", c)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, r.Submit(context.Background(), change("default", "other", ActionCreate, 1, "req-other")))
	moved := remoteHead(t, rm)
	p2, err := r.PushBranch(context.Background(), "storefleet/late/req-late", c)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Base != moved || p2.Base == p1.Base {
		t.Fatalf("proposal on %s, main at %s (first on %s)", p2.Base, moved, p1.Base)
	}
	if got := runGit(t, rm.bare, "rev-parse", "refs/heads/storefleet/late/req-late^"); got != moved {
		t.Fatalf("branch parent %s, want %s", got, moved)
	}
	// Mergeable without conflict: a fast-forward of main.
	runGit(t, rm.bare, "merge-base", "--is-ancestor", moved, "refs/heads/storefleet/late/req-late")
}

func TestProposalRefusesTheFleetBranchAndStaleBases(t *testing.T) {
	rm := newRemote(t, "http")
	r := open(t, rm)
	c := change("default", "x", ActionCreate, 1, "req-x")
	if _, err := r.PushBranch(context.Background(), "main", c); err == nil {
		t.Fatal("a proposal may not be pushed to the fleet's branch")
	}
	mustOK(t, r.Submit(context.Background(), change("default", "x", ActionCreate, 1, "req-x0")))
	if _, err := r.PushBranch(context.Background(), "storefleet/x/req-x", c); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a create proposal of an existing store: %v", err)
	}
}

// mergeAsGitHub merges branch into main in a clone of bare, as GitHub's three merge
// buttons do, and pushes main.
func mergeAsGitHub(t *testing.T, bare, branch, how string) {
	t.Helper()
	wt := filepath.Join(t.TempDir(), "wt")
	runGit(t, filepath.Dir(wt), "clone", "-q", "--branch", "main", bare, wt)
	runGit(t, wt, "config", "user.name", "Reviewer")
	runGit(t, wt, "config", "user.email", "reviewer@example.com")
	runGit(t, wt, "fetch", "-q", "origin", branch)
	switch how {
	case "merge":
		runGit(t, wt, "merge", "-q", "--no-ff", "-m", "Merge pull request #1 from "+branch, "FETCH_HEAD")
	case "squash":
		// GitHub's squash message for a one-commit pull request: the commit's title
		// with the PR number, then its body.
		msg := runGit(t, wt, "log", "-1", "--format=%B", "FETCH_HEAD")
		title, body, _ := strings.Cut(msg, "\n")
		runGit(t, wt, "merge", "-q", "--squash", "FETCH_HEAD")
		runGit(t, wt, "commit", "-q", "-m", title+" (#1)\n"+body)
	case "rebase":
		runGit(t, wt, "cherry-pick", "FETCH_HEAD")
	}
	runGit(t, wt, "push", "-q", "origin", "main")
}

// A proposal branch is deleted from the remote (loose ref or over HTTP) once its
// pull request closed; the fleet's branch is refused, and a branch already gone is
// not an error.
func TestDeleteProposalBranch(t *testing.T) {
	for _, kind := range []string{"http", "path"} {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			r := open(t, rm)
			ctx := context.Background()
			branch := "storefleet/shop/req-del"
			if _, err := r.PushBranch(ctx, branch, change("default", "shop", ActionCreate, 1, "req-del")); err != nil {
				t.Fatal(err)
			}
			mainBefore := remoteHead(t, rm)
			if err := r.DeleteBranch(ctx, branch); err != nil {
				t.Fatal(err)
			}
			if out := runGit(t, rm.bare, "for-each-ref", "refs/heads/storefleet/"); out != "" {
				t.Fatalf("the proposal branch is still there: %s", out)
			}
			if got := remoteHead(t, rm); got != mainBefore {
				t.Fatalf("the fleet branch moved: %s -> %s", mainBefore, got)
			}
			if err := r.DeleteBranch(ctx, branch); err != nil {
				t.Fatalf("a branch already gone: %v", err)
			}
			if err := r.DeleteBranch(ctx, "main"); err == nil || remoteHead(t, rm) != mainBefore {
				t.Fatalf("the fleet's branch deleted: %v", err)
			}
		})
	}
}

// A proposal branch read back by a fresh clone (a restart) gives the change as it
// was pushed: the store, action, trailers, the folder's files, and the folder's tree
// before it (a create has none).
func TestReadProposalBranch(t *testing.T) {
	for _, kind := range []string{"http", "path"} {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			r := open(t, rm)
			ctx := context.Background()
			mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-c")))
			before, _, err := r.Store(ctx, store.Dir("local", "shop"))
			if err != nil {
				t.Fatal(err)
			}
			up := change("local", "shop", ActionUpdate, 2, "req-u")
			up.Tenant = "acme"
			if _, err := r.PushBranch(ctx, "storefleet/shop/req-u", up); err != nil {
				t.Fatal(err)
			}
			if _, err := r.PushBranch(ctx, "storefleet/new/req-n", change("local", "new", ActionCreate, 1, "req-n")); err != nil {
				t.Fatal(err)
			}
			fresh := open(t, rm)
			got, err := fresh.ReadBranch(ctx, "storefleet/shop/req-u")
			if err != nil {
				t.Fatal(err)
			}
			c := got.Change
			if c.Store != "shop" || c.Cluster != "local" || c.Action != ActionUpdate || c.RequestID != "req-u" || c.Tenant != "acme" ||
				c.Actor != "alice@example.com" || c.Dir != up.Dir || got.Base != before || got.Parent != remoteHead(t, rm) {
				t.Fatalf("read back %+v (base %s, parent %s), pushed %+v on %s", c, got.Base, got.Parent, up, before)
			}
			if len(c.Files) != len(up.Files) {
				t.Fatalf("%d files read back, %d pushed", len(c.Files), len(up.Files))
			}
			pushed := map[string]string{}
			for _, f := range up.Files {
				pushed[f.Path] = string(f.Content)
			}
			for _, f := range c.Files {
				if want, ok := pushed[f.Path]; !ok || want != string(f.Content) {
					t.Fatalf("file %s read back differs from the one pushed", f.Path)
				}
			}
			if n, err := fresh.ReadBranch(ctx, "storefleet/new/req-n"); err != nil || n.Base != "" || n.Change.Action != ActionCreate {
				t.Fatalf("a proposed create: %+v, %v", n, err)
			}
			if _, err := fresh.ReadBranch(ctx, "storefleet/none/req-x"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a branch not there: %v", err)
			}
		})
	}
}

// A proposal of a store on a chart version no store used before carries the shared
// chart source, as a direct commit does: merged, the store's HelmRelease names a
// source that is there.
func TestProposalCarriesSharedChartSource(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	c := onVersion(change("local", "pr-shop", ActionCreate, 1, "req-pr"), "7.1")
	p, err := r.PushBranch(context.Background(), "storefleet/pr-shop/req-pr", c)
	if err != nil {
		t.Fatal(err)
	}
	if !hasSource(t, rm, p.Commit, "7.1") {
		t.Fatalf("proposal %s lacks %s", p.Commit, sourcePath("7.1"))
	}
	if hasSource(t, rm, remoteHead(t, rm), "7.1") {
		t.Fatal("the fleet branch gained the source before any merge")
	}
}
