package gitrepo

import (
	"context"
	"testing"
)

// TestContinues: a later step of a request under the same Request-Id (the second
// purge step gitops-api commits itself) is applied, where a change that is not
// marked so is taken for a retry; afterwards a retry is answered with the later
// step's commit. A fresh replica, which knows the id only from trailers, agrees.
func TestContinues(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-1")))
	first := mustOK(t, r.Submit(ctx, change("local", "shop", ActionDelete, 1, "purge-1")))

	// Without the mark, the removal under purge-1 is a retry of the first step.
	if dup := mustOK(t, r.Submit(ctx, change("local", "shop", ActionPurge, 0, "purge-1"))); !dup.Duplicate || dup.Commit != first.Commit {
		t.Fatalf("unmarked later step: %+v, want the first step's commit %s", dup, first.Commit)
	}
	if _, err := gitCmd(rm.bare, "rev-parse", "main:"+change("local", "shop", ActionPurge, 0, "").Dir); err != nil {
		t.Fatalf("the folder went without the mark: %v", err)
	}

	// A fresh replica (the index from trailers only) applies the marked step.
	r2 := open(t, rm)
	c := change("local", "shop", ActionPurge, 0, "purge-1")
	c.Continues = true
	second := mustOK(t, r2.Submit(ctx, c))
	if second.Duplicate || second.Commit == first.Commit {
		t.Fatalf("marked later step: %+v", second)
	}
	if _, err := gitCmd(rm.bare, "rev-parse", "main:"+c.Dir); err == nil {
		t.Fatal("the folder is still there")
	}
	if got := runGit(t, rm.bare, "log", "-1", "--format=%(trailers:key=Request-Id,valueonly)", "main"); got != "purge-1" {
		t.Fatalf("Request-Id trailer %q", got)
	}
	// A retry of the request now gets the commit where it ended.
	if dup := mustOK(t, r2.Submit(ctx, change("local", "shop", ActionPurge, 0, "purge-1"))); !dup.Duplicate || dup.Commit != second.Commit {
		t.Fatalf("retry after the later step: %+v, want %s", dup, second.Commit)
	}
}
