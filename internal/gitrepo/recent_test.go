package gitrepo

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/store"
)

// Two writers with on-disk clones race on one remote, merging their recent packs every
// few commits. Every create lands; each clone is whole for git, holds no object that
// nothing names (the packs of attempts that lost a race were taken away again), keeps
// no loose objects, and reads back every store after a restart from its packs alone.
func TestRecentPacksMergeAndDrop(t *testing.T) {
	defer func(p int) { mergeRecentPacks = p }(mergeRecentPacks)
	mergeRecentPacks = 4
	rm := newRemote(t, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dirs := []string{filepath.Join(t.TempDir(), "a.git"), filepath.Join(t.TempDir(), "b.git")}
	var ws []*Repo
	for _, d := range dirs {
		ws = append(ws, open(t, rm, func(o *Options) { o.Dir = d }))
	}
	const perWriter, workers = 30, 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	var names []string
	for wi, w := range ws {
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < perWriter; i += workers {
					name := fmt.Sprintf("w%d-shop-%02d", wi, i)
					if res := w.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)); res.Err != nil {
						t.Errorf("create %s: %v", name, res.Err)
						continue
					}
					mu.Lock()
					names = append(names, name)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for i, w := range ws {
		if err := w.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		w.recent.merges.Wait()
		w.recent.mu.RLock()
		left := len(w.recent.packs)
		w.recent.mu.RUnlock()
		if left >= mergeRecentPacks {
			t.Errorf("writer %d: %d recent packs never merged", i, left)
		}
		w.Close()
	}
	for i, d := range dirs {
		fsck(t, d)
		if out := runGit(t, d, "fsck", "--unreachable", "--no-reflogs", "--no-progress"); strings.TrimSpace(out) != "" {
			t.Errorf("clone %d keeps objects nothing names (a lost attempt's pack):\n%s", i, out)
		}
		if loose, _ := filepath.Glob(filepath.Join(d, "objects", "[0-9a-f][0-9a-f]", "*")); len(loose) > 0 {
			t.Errorf("clone %d has %d loose objects, want none", i, len(loose))
		}
		r := open(t, rm, func(o *Options) { o.Dir = d })
		list, err := r.ListStores(ctx)
		if err != nil || len(list) != len(names) {
			t.Errorf("clone %d after a restart lists %d stores (%v), want %d", i, len(list), err, len(names))
		}
		for _, n := range names {
			if _, files, err := r.Store(ctx, store.Dir("local", n)); err != nil || len(files) == 0 {
				t.Fatalf("clone %d after a restart: store %s: %d files, %v", i, n, len(files), err)
			}
		}
	}
}

// mergeRecentNow merges every recent pack and waits for it (tests: the writer is idle).
func (r *Repo) mergeRecentNow() error {
	r.recent.merges.Wait()
	r.recent.mu.RLock()
	all := newObjectSet()
	var packs []plumbing.Hash
	for sum, objs := range r.recent.packs {
		packs = append(packs, sum)
		for _, h := range objs.order {
			all.add(objs.byHash[h])
		}
	}
	r.recent.mu.RUnlock()
	if len(packs) == 0 {
		return nil
	}
	return r.mergeRecent(all, packs)
}

// A disk clone of a fleet with no commit yet has nothing fetched into it, so its
// folders are go-git's Init's, which go-git asks of the storage: through the recent
// objects' storage too, or the clone has no objects folder and is never writable.
func TestDiskCloneOfEmptyRemoteIsWritable(t *testing.T) {
	srv, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.InitBare("fleet.git"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "clone.git")
	r := open(t, remote{url: srv.URL() + "/fleet.git"}, func(o *Options) { o.Dir = dir })
	if err := r.Writable(context.Background()); err != nil {
		t.Errorf("Writable on a clone of an empty fleet: %v", err)
	}
}

// The pack of an attempt that lost a race is taken away after a fetch opened a
// storage that lists it. When the other writer's commit holds one of its objects too
// (the chart source both first stores of a version bring, and its folder), that
// storage could look the object up in the removed pack: "packfile not found", the
// create failed. Rounds of two disk clones racing their first stores of a version,
// then each writing once more, which reads that folder.
func TestDroppedPackLeavesNoStaleStorage(t *testing.T) {
	for round := range 8 {
		rm := newRemote(t, "http")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var ws []*Repo
		for _, n := range []string{"a", "b"} {
			d := filepath.Join(t.TempDir(), n+".git")
			ws = append(ws, open(t, rm, func(o *Options) { o.Dir = d }))
		}
		create := func(w *Repo, name string) Result {
			c := change("local", name, ActionCreate, 1, "req-"+name)
			c.Shared = []File{{Path: sourcePath("1.0.0"), Content: []byte("kind: HelmChart\nmetadata:\n  name: woocommerce-1.0.0\n")}}
			return w.Submit(ctx, c)
		}
		var wg sync.WaitGroup
		for wi, w := range ws {
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if res := create(w, fmt.Sprintf("r%d-w%d-%d", round, wi, i)); res.Err != nil {
						t.Errorf("round %d: create: %v", round, res.Err)
					}
				}()
			}
		}
		wg.Wait()
		for wi, w := range ws {
			if res := create(w, fmt.Sprintf("r%d-w%d-last", round, wi)); res.Err != nil {
				t.Errorf("round %d: create after the race: %v", round, res.Err)
			}
			w.Close()
		}
		cancel()
	}
}
