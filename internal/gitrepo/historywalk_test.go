package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// unmovedName is a store name whose folder is the same at both shard counts: a reshard
// leaves it where it is. Found, not written down, so the layout's hash can change.
func unmovedName(t *testing.T, from, to int) string {
	t.Helper()
	for i := range 1 << 16 {
		name := fmt.Sprintf("stay-%d", i)
		if store.ShardIn(name, from) == store.ShardIn(name, to) {
			return name
		}
	}
	t.Fatalf("no name keeps its shard from %d to %d shards", from, to)
	return ""
}

// reshardedFleet builds, through the writer, the history of a few stores around a
// reshard from 4,096 to 256 shards (pushReshard), and returns how many changes each
// store's history holds: moved (changed before and after the move), early (created
// before it only, so moved once), stay (a reshard leaves its folder where it was),
// gone (created and purged before it: nothing left to move) and late (created after).
func reshardedFleet(t *testing.T, r *Repo, rm remote) map[string]int {
	t.Helper()
	ctx := context.Background()
	stay := unmovedName(t, store.DefaultShards, 256)
	shards := store.DefaultShards
	rev := map[string]int{}
	submit := func(name string, a Action) {
		t.Helper()
		rev[name]++
		ch := change("local", name, a, rev[name], fmt.Sprintf("req-%s-%d", name, rev[name]))
		ch.Dir = store.DirIn("local", name, shards)
		mustOK(t, r.Submit(ctx, ch))
	}
	submit("moved", ActionCreate)
	submit("early", ActionCreate)
	submit(stay, ActionCreate)
	submit("gone", ActionCreate)
	for range 3 {
		submit("moved", ActionUpdate)
	}
	submit("gone", ActionPurge)
	submit(stay, ActionUpdate)

	pushReshard(t, rm, 256)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	shards = 256
	for range 3 {
		submit("moved", ActionUpdate)
	}
	submit(stay, ActionUpdate)
	submit("late", ActionCreate)
	return map[string]int{
		"moved": 4 + 1 + 3,
		"early": 1 + 1,
		stay:    3,
		"gone":  2,
		"late":  1,
	}
}

// TestWalkHistoryFollowsAReshard: the log walk, which answers while the index is
// built (the first seconds after a start), gives a store's history as the index does
// across a reshard — the changes before the move, the move once, those after — read
// from its folder at either shard count, page by page (after a commit, at a commit, a
// commit not its own), for stores the reshard moved and those it did not.
func TestWalkHistoryFollowsAReshard(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	waitIndexReady(t, r)
	counts := reshardedFleet(t, r, rm)
	seed := runGit(t, rm.bare, "rev-list", "--max-parents=0", "main")

	for name, n := range counts {
		for _, shards := range []int{store.DefaultShards, 256} {
			dir := store.DirIn("local", name, shards)
			read := func(how string, from plumbing.Hash, inclusive bool, limit int) (idx, walk []Commit) {
				t.Helper()
				idx, err := r.indexedHistory(ctx, dir, from, inclusive, limit)
				if err != nil {
					t.Fatalf("%s: %s: index: %v", dir, how, err)
				}
				walk, err = r.walkHistory(ctx, dir, from, inclusive, limit)
				if err != nil {
					t.Fatalf("%s: %s: log walk: %v", dir, how, err)
				}
				if historyOf(t, idx) != historyOf(t, walk) {
					t.Errorf("%s (%s): %s:\nindex:\n%slog walk:\n%s", name, dir, how, historyOf(t, idx), historyOf(t, walk))
				}
				return idx, walk
			}
			all, walked := read("whole", plumbing.ZeroHash, false, 100)
			if len(all) != n || len(walked) != n {
				t.Errorf("%s (%s): %d changes from the index, %d walking the log; want %d", name, dir, len(all), len(walked), n)
			}
			for _, c := range all {
				h := plumbing.NewHash(c.Hash)
				read("2 after "+c.Hash, h, false, 2)
				read("2 at "+c.Hash, h, true, 2)
			}
			// A commit that is not one of the store's changes is no cursor, either way.
			for _, inclusive := range []bool{false, true} {
				_, ierr := r.indexedHistory(ctx, dir, plumbing.NewHash(seed), inclusive, 2)
				_, werr := r.walkHistory(ctx, dir, plumbing.NewHash(seed), inclusive, 2)
				if !errors.Is(ierr, ErrNotFound) || !errors.Is(werr, ErrNotFound) {
					t.Errorf("%s (%s): cursor at the seed commit: index %v, log walk %v; want ErrNotFound", name, dir, ierr, werr)
				}
			}
		}
	}
}

// TestWalkHistoryReshardShallow: a first start whose shallow boundary falls before a
// reshard (HistoryPage walks the log: nothing is indexed yet) answers a moved store's
// page that the boundary does not reach, as the index later does, and "still loading"
// for one that reaches it, never a history cut at the move nor at the boundary.
func TestWalkHistoryReshardShallow(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t, "http")
	counts := reshardedFleet(t, open(t, rm), rm)
	hold := make(chan struct{})
	// The move and the 5 commits after it, and one before: the boundary.
	r := open(t, rm, func(o *Options) { o.holdHistory = hold; o.shallowDepth = 7 })
	if r.historyComplete() || r.HistoryIndexed() {
		t.Fatal("a first start over HTTP fetched the whole history or indexed it; want the newest commits alone, walked")
	}
	dir := store.DirIn("local", "moved", 256)
	first, more, err := r.HistoryPage(ctx, dir, HistoryQuery{Limit: 3})
	if err != nil || len(first) != 3 || !more {
		t.Fatalf("moved's newest 3 from the shallow clone: %s more=%v %v", historyOf(t, first), more, err)
	}
	// The move, then moved's changes behind the boundary.
	if _, _, err := r.HistoryPage(ctx, dir, HistoryQuery{Limit: 3, Before: first[2].Hash}); !errors.Is(err, ErrHistoryLoading) {
		t.Fatalf("moved's page across the move and the boundary: %v, want ErrHistoryLoading", err)
	}
	close(hold)
	waitFor(t, "the history index", r.HistoryIndexed)
	all, err := r.indexedHistory(ctx, dir, plumbing.ZeroHash, false, 100)
	if err != nil || len(all) != counts["moved"] {
		t.Fatalf("moved's history from the index: %d changes, %v; want %d", len(all), err, counts["moved"])
	}
	if historyOf(t, first) != historyOf(t, all[:3]) {
		t.Errorf("moved's newest 3 walked from the shallow clone:\n%sfrom the index:\n%s", historyOf(t, first), historyOf(t, all[:3]))
	}
}
