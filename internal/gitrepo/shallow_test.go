package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// TestShallowFirstStart: a replica with no clone starts from the tip alone over HTTP
// (git http-backend; depth 1 here, so a short history has a boundary), reads and writes at once, answers "still loading" for any history
// that reaches behind its boundary (never a history cut there), and once the history
// has arrived answers exactly as a full clone does. On disk, a restart before the
// history arrived goes on fetching it.
func TestShallowFirstStart(t *testing.T) {
	for _, mode := range []string{"memory", "disk"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			rm := newRemote(t, "http")
			full := open(t, rm)
			mustOK(t, full.Submit(ctx, change("local", "old", ActionCreate, 1, "req-old-1")))
			mustOK(t, full.Submit(ctx, change("local", "old", ActionUpdate, 2, "req-old-2")))
			for _, n := range []string{"a", "b", "c"} {
				mustOK(t, full.Submit(ctx, change("local", n, ActionCreate, 1, "req-"+n)))
			}
			want, err := full.History(ctx, store.Dir("local", "old"), 0)
			if err != nil || len(want) != 2 {
				t.Fatalf("full clone's history: %v, %d commits", err, len(want))
			}

			// A history shorter than the first fetch's depth arrives whole.
			whole := open(t, rm)
			if !whole.historyComplete() || len(whole.shallowBoundary()) != 0 {
				t.Fatal("a 6-commit history started shallow; want it whole in the first fetch")
			}

			hold := make(chan struct{})
			dir := ""
			if mode == "disk" {
				dir = filepath.Join(t.TempDir(), "clone.git")
			}
			r := open(t, rm, func(o *Options) { o.Dir = dir; o.holdHistory = hold; o.shallowDepth = 1 })
			if r.historyComplete() {
				t.Fatal("a first start over HTTP fetched the whole history; want the tip alone")
			}
			if got := len(r.shallowBoundary()); got != 1 {
				t.Fatalf("shallow boundary: %d commits, want the tip", got)
			}
			// Reads of the tip are served.
			tree, files, err := r.Store(ctx, store.Dir("local", "old"))
			if err != nil || len(files) == 0 || tree == "" {
				t.Fatalf("Store at the shallow tip: %v, %d files", err, len(files))
			}
			// A history that reaches behind the boundary is not answered, nor cut.
			if _, err := r.History(ctx, store.Dir("local", "old"), 0); !errors.Is(err, ErrHistoryLoading) {
				t.Fatalf("History behind the boundary: %v, want ErrHistoryLoading", err)
			}
			_, err = Fleet{R: r}.History(ctx, store.Dir("local", "old"))
			if code := store.ErrorCode(err); code != store.EUNAVAILABLE {
				t.Fatalf("Fleet.History while loading: code %q (%v), want %q", code, err, store.EUNAVAILABLE)
			}
			if _, err := r.RemovalsSince(ctx, time.Now().Add(-time.Hour)); !errors.Is(err, ErrHistoryLoading) {
				t.Fatalf("RemovalsSince while loading: %v, want ErrHistoryLoading", err)
			}
			// Writes land on the real server from the shallow clone.
			before := remoteHead(t, rm)
			res := mustOK(t, r.Submit(ctx, change("local", "new", ActionCreate, 1, "req-new")))
			if parent := runGit(t, rm.bare, "rev-parse", res.Commit+"^"); parent != before {
				t.Fatalf("pushed commit's parent %s, want the remote's tip %s", parent, before)
			}
			mustOK(t, r.Submit(ctx, change("local", "old", ActionUpdate, 3, "req-old-3")))

			if mode == "disk" {
				// Stopped before the history arrived: the next start carries on.
				r.Close()
				if _, err := os.Stat(filepath.Join(dir, "shallow")); err != nil {
					t.Fatalf("the clone's shallow file: %v", err)
				}
				r = open(t, rm, func(o *Options) { o.Dir = dir; o.holdHistory = hold; o.shallowDepth = 1 })
				if r.historyComplete() {
					t.Fatal("a restart of a shallow clone took its history for complete")
				}
			}
			close(hold)
			waitFor(t, "the history behind the shallow start", r.historyComplete)

			got, err := r.History(ctx, store.Dir("local", "old"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[1].Hash != want[0].Hash || got[2].Hash != want[1].Hash {
				t.Fatalf("history once complete: %v, want the new update over %v", hashes(got), hashes(want))
			}
			waitFor(t, "the history index", r.HistoryIndexed)
			indexed, err := r.History(ctx, store.Dir("local", "old"), 0)
			if err != nil || strings.Join(hashes(indexed), " ") != strings.Join(hashes(got), " ") {
				t.Fatalf("indexed history %v (%v), want %v", hashes(indexed), err, hashes(got))
			}
			if _, err := r.RemovalsSince(ctx, time.Now().Add(-time.Hour)); err != nil {
				t.Fatalf("RemovalsSince once complete: %v", err)
			}
			if mode == "disk" {
				if _, err := os.Stat(filepath.Join(dir, "shallow")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the shallow file is still there once the history is complete: %v", err)
				}
			}
			// The Request-Id index reaches behind the old boundary again.
			info, err := r.FindRequest(ctx, "req-old-1")
			if err != nil || info.Commit != want[1].Hash {
				t.Fatalf("FindRequest of a commit behind the old boundary: %+v, %v", info, err)
			}
		})
	}
}

func hashes(cs []Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Hash[:8]
	}
	return out
}

// waitFor polls cond until it holds; a minute is a hang, not a slow machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
