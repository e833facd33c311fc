package gitrepo

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// A purge's first step keeps the folder (Keep): the commit says purge, as the audit
// log must, but the MaxPurges guard counts only folders removed, so first steps of
// many stores in one commit are never refused for it.
func TestPurgeFirstStepIsAPurgeThatKeepsTheFolder(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm, func(o *Options) { o.MaxPurges = 1 })
	ctx := context.Background()
	var creates []Change
	for i := range 4 {
		creates = append(creates, change("local", fmt.Sprintf("shop-%d", i), ActionCreate, 1, ""))
	}
	for _, res := range r.SubmitAll(ctx, creates) {
		mustOK(t, res)
	}
	keep := func(i int) Change {
		c := change("local", fmt.Sprintf("shop-%d", i), ActionPurge, 0, fmt.Sprintf("purge-1-%d", i))
		c.Keep, c.Files = true, storeFiles(c.Store, 2, false)
		return c
	}
	// Three first steps and one removal in one commit, limit one: all land.
	res := r.SubmitAll(ctx, []Change{keep(0), keep(1), keep(2), change("local", "shop-3", ActionPurge, 0, "purge-2-3")})
	for _, res := range res {
		mustOK(t, res)
	}
	list, err := r.ListStores(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("after three first steps and one removal: %+v %v", list, err)
	}
	msg := runGit(t, rm.bare, "log", "-1", "--format=%B", "main")
	for i := range 4 {
		if !strings.Contains(msg, fmt.Sprintf("Store: shop-%d\nAction: purge\n", i)) {
			t.Errorf("shop-%d is not recorded as a purge:\n%s", i, msg)
		}
	}
	h, err := r.History(ctx, store.Dir("local", "shop-0"), 0)
	if err != nil || len(h) != 2 {
		t.Fatalf("history of a first step: %+v %v", h, err)
	}
	for _, c := range h[0].Changes {
		if c.Store == "shop-0" && c.Action != string(ActionPurge) {
			t.Errorf("history records the first step as %q", c.Action)
		}
	}

	// Keep belongs to a purge, and a first step needs the files it keeps.
	bad := change("local", "shop-0", ActionUpdate, 3, "")
	bad.Keep = true
	wantErr(t, r.Submit(ctx, bad), ErrInvalid)
	empty := change("local", "shop-0", ActionPurge, 0, "")
	empty.Keep = true
	wantErr(t, r.Submit(ctx, empty), ErrInvalid)
}
