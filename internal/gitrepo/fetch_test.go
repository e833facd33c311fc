package gitrepo

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Two clones of one fleet over HTTP, as two replicas: what one commits the other learns
// through Fetches.Fresh, and ChangedStores names exactly the folders that changed in
// between; Includes tells whether a commit is in a later one.
func TestFollowAnotherWriter(t *testing.T) {
	rm := newRemote(t, "http")
	a, b := open(t, rm), open(t, rm)
	ctx := context.Background()
	before, _ := b.Head()
	c1 := mustOK(t, a.Submit(ctx, change("local", "one", ActionCreate, 1, "r1")))
	mustOK(t, a.Submit(ctx, change("local", "two", ActionCreate, 1, "r2")))
	mustOK(t, a.Submit(ctx, change("other", "three", ActionCreate, 1, "r3")))
	c4 := mustOK(t, a.Submit(ctx, change("local", "one", ActionUpdate, 2, "r4")))

	if _, _, err := b.Store(ctx, store.Dir("local", "two")); err == nil {
		t.Fatal("b sees a's store before fetching")
	}
	f := b.NewFetches(50 * time.Millisecond)
	// Many readers at once share the fetches: each returns only after one that began
	// after its call.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Fresh(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	after, _ := b.Head()
	if after != c4.Commit {
		t.Fatalf("b at %s after Fresh, want a's last commit %s", after, c4.Commit)
	}
	f.mu.Lock()
	fetches := f.started
	f.mu.Unlock()
	if fetches > 3 {
		t.Errorf("20 concurrent readers caused %d fetches; they should share them", fetches)
	}
	got, err := b.ChangedStores(ctx, before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{store.Dir("local", "one"), store.Dir("local", "two"), store.Dir("other", "three")}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ChangedStores = %v, want %v", got, want)
	}
	// Each folder's tree at the later head is the one the writer reported for the
	// last change to it.
	trees, err := b.ChangedStoreTrees(ctx, before, after)
	if err != nil {
		t.Fatal(err)
	}
	if got := trees[store.Dir("local", "one")]; got == "" || got != c4.Tree {
		t.Fatalf("ChangedStoreTrees gives local/one the tree %q, the writer reported %q", got, c4.Tree)
	}
	if len(trees) != len(want) {
		t.Fatalf("ChangedStoreTrees = %v, want the folders %v", trees, want)
	}
	if got, _ := b.ChangedStores(ctx, c1.Commit, c1.Commit); len(got) != 0 {
		t.Fatalf("no change between a commit and itself, got %v", got)
	}
	if ok, err := b.Includes(ctx, c4.Commit, c1.Commit); err != nil || !ok {
		t.Fatalf("Includes(later, earlier) = %v, %v", ok, err)
	}
	if ok, err := b.Includes(ctx, c1.Commit, c4.Commit); err != nil || ok {
		t.Fatalf("Includes(earlier, later) = %v, %v", ok, err)
	}
	if _, err := b.Includes(ctx, "0123456789012345678901234567890123456789", c1.Commit); err == nil {
		t.Fatal("Includes of a commit the clone lacks answered")
	}
}
