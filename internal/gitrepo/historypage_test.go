package gitrepo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// TestHistoryPages: a folder's history longer than one page (a store's create and 130
// updates) is read in full page after page, from the index and by walking the log
// alike: 50, 50, 31 commits, newest first, none twice and none left out, the last page
// saying that nothing follows. A page starts at a commit (At) or after it (Before),
// however old; a commit that is not one of the folder's changes is not found.
func TestHistoryPages(t *testing.T) {
	ctx := context.Background()
	bare := historyFixture(t, 2, 260) // fixture-00000 and -00001 updated in turn: 130 updates each
	r, err := Open(ctx, Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	waitIndexReady(t, r)
	dir := store.Dir("local", "fixture-00000")
	other := store.Dir("local", "fixture-00001")

	for _, mode := range []string{"index", "log walk"} {
		if mode == "log walk" {
			// What History does while the index is built: walk the log.
			r.hist.ready.Store(false)
			t.Cleanup(func() { r.hist.ready.Store(true) })
		}
		all, err := r.History(ctx, dir, 1000)
		if err != nil || len(all) != 131 {
			t.Fatalf("%s: the whole history: %d commits, %v; want 131", mode, len(all), err)
		}
		var got []string
		var sizes []int
		before := ""
		for {
			page, more, err := r.HistoryPage(ctx, dir, HistoryQuery{Limit: 50, Before: before})
			if err != nil {
				t.Fatalf("%s: page after %q: %v", mode, before, err)
			}
			sizes = append(sizes, len(page))
			for _, c := range page {
				got = append(got, c.Hash)
			}
			if !more {
				break
			}
			if len(sizes) > 5 {
				t.Fatalf("%s: pages never end: %v", mode, sizes)
			}
			before = page[len(page)-1].Hash
		}
		if want := []int{50, 50, 31}; !slices.Equal(sizes, want) {
			t.Errorf("%s: page sizes %v, want %v", mode, sizes, want)
		}
		var want []string
		for _, c := range all {
			want = append(want, c.Hash)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: the pages, joined, are not the history newest first:\n%v\nwant\n%v", mode, got, want)
		}
		// The oldest change (the create), on its own.
		oldest := all[len(all)-1]
		page, more, err := r.HistoryPage(ctx, dir, HistoryQuery{Limit: 1, At: oldest.Hash})
		if err != nil || len(page) != 1 || page[0].Hash != oldest.Hash || more || page[0].Changes[0].Action != string(ActionCreate) {
			t.Errorf("%s: at the oldest change: %s more=%v %v", mode, historyOf(t, page), more, err)
		}
		// A page of exactly what is left has no more after it.
		if page, more, err := r.HistoryPage(ctx, dir, HistoryQuery{Limit: 31, Before: all[99].Hash}); err != nil || len(page) != 31 || more {
			t.Errorf("%s: the last 31: %d commits, more=%v, %v", mode, len(page), more, err)
		}
		// The other store's change is a real commit, but none of this folder's.
		theirs, err := r.History(ctx, other, 1)
		if err != nil || len(theirs) != 1 {
			t.Fatalf("%s: history of %s: %v", mode, other, err)
		}
		for _, q := range []HistoryQuery{{Before: theirs[0].Hash}, {At: theirs[0].Hash}, {Before: strings.Repeat("0", 40)}, {Before: "main"}} {
			if _, _, err := r.HistoryPage(ctx, dir, q); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %+v: %v, want ErrNotFound", mode, q, err)
			}
		}
	}
}
