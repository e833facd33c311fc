package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestNewReachable(t *testing.T) {
	rm := newRemote(t, "http")
	r := open(t, rm)
	ctx := context.Background()
	seed := remoteHead(t, rm)
	c1 := mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "r1"))).Commit
	c2 := mustOK(t, r.Submit(ctx, change("local", "shop", ActionUpdate, 2, "r2"))).Commit

	known := map[string]bool{}
	isKnown := func(s string) bool { return known[s] }
	got, err := r.NewReachable(ctx, c1, isKnown)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !contains(got, c1) || !contains(got, seed) {
		t.Fatalf("reachable from c1: %v, want c1 and the seed", got)
	}
	for _, s := range got {
		known[s] = true
	}
	// Only what is new since c1 is walked; c2 itself is not an ancestor of c1.
	got, err = r.NewReachable(ctx, c2, isKnown)
	if err != nil || len(got) != 1 || got[0] != c2 {
		t.Fatalf("reachable from c2 beyond c1: %v, %v", got, err)
	}

	// A commit someone else pushed is fetched before the walk.
	work := filepath.Join(t.TempDir(), "w")
	runGit(t, filepath.Dir(work), "clone", "-q", rm.url, work)
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "commit", "-qam", "outside")
	runGit(t, work, "push", "-q", "origin", "main")
	outside := runGit(t, work, "rev-parse", "HEAD")
	got, err = r.NewReachable(ctx, outside, func(s string) bool { return s == c2 || known[s] })
	if err != nil || len(got) != 1 || got[0] != outside {
		t.Fatalf("reachable from an outside commit: %v, %v", got, err)
	}

	if _, err := r.NewReachable(ctx, "0123456789012345678901234567890123456789", isKnown); !errors.Is(err, ErrUnknownCommit) {
		t.Fatalf("unknown commit: %v", err)
	}
	if _, err := r.NewReachable(ctx, "main", isKnown); !errors.Is(err, ErrUnknownCommit) {
		t.Fatalf("not a hash: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
