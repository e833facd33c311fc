package gitrepo

import (
	"context"
	"testing"
)

// Decisions a batch makes change by change against the tree the batch built so far,
// which the other tests do not reach: an update expecting no folder, a create and a
// purge of one store that cancel out, and a duplicate of a change that failed.
func TestBatchDecisions(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	mustOK(t, r.Submit(ctx, change("local", "there", ActionCreate, 1, "")))
	head := remoteHead(t, rm)

	absent := change("local", "there", ActionUpdate, 2, "")
	absent.Expect = ExpectAbsent()
	wantErr(t, r.Submit(ctx, absent), ErrConflict)

	res := r.SubmitAll(ctx, []Change{
		change("local", "brief", ActionCreate, 1, ""),
		change("local", "brief", ActionPurge, 0, ""),
	})
	for i, res := range res {
		if res.Err != nil || !res.NoOp || res.Commit != head {
			t.Fatalf("change %d of a create and purge that cancel out: %+v, head %s", i, res, head)
		}
	}
	if got := remoteHead(t, rm); got != head {
		t.Fatalf("changes that cancel out made commit %s", got)
	}

	res = r.SubmitAll(ctx, []Change{
		change("local", "there", ActionCreate, 1, "req-dup"),
		change("local", "there", ActionCreate, 1, "req-dup"),
	})
	wantErr(t, res[0], ErrExists)
	wantErr(t, res[1], ErrExists)
	if res[1].Duplicate {
		t.Fatalf("a duplicate of a failed change reported as a duplicate: %+v", res[1])
	}
}
