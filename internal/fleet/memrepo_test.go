package fleet_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// memRepo is a store.Repository in memory: enough of the fleet repository to
// drive the lifecycle, with every folder read counted and, while gate is open
// (not nil and not closed), held back, to stand for a fleet whose specs are not
// read yet.
type memRepo struct {
	mu      sync.Mutex
	dirs    map[string][]store.File
	history map[string][]store.Entry
	commits int
	gate    chan struct{}
	reads   atomic.Int64
}

func newMemRepo() *memRepo {
	return &memRepo{dirs: map[string][]store.File{}, history: map[string][]store.Entry{}}
}

func treeOf(files []store.File) string {
	h := sha1.New()
	sorted := append([]store.File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Path, len(f.Content))
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// put writes a folder as a push from outside the API would: no history entry.
func (r *memRepo) put(dir string, files []store.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs[dir] = files
}

func (r *memRepo) Submit(ctx context.Context, c store.Change) (store.Commit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, exists := r.dirs[c.Dir]
	switch {
	case c.Base == "" && exists && !c.Remove:
		return store.Commit{}, store.ErrExists
	case c.Base != "" && !exists:
		return store.Commit{}, store.ErrNotFound
	case c.Base != "" && treeOf(cur) != c.Base:
		return store.Commit{}, store.ErrConflict
	}
	r.commits++
	commit := store.Commit{SHA: fmt.Sprintf("%040x", r.commits), Time: time.Unix(int64(r.commits), 0).UTC()}
	if c.Remove {
		delete(r.dirs, c.Dir)
	} else {
		r.dirs[c.Dir] = c.Files
	}
	e := store.Entry{Commit: commit, Store: c.Store, Cluster: c.Cluster, Action: c.Action, Actor: c.Actor,
		OnBehalfOf: c.OnBehalfOf, Tenant: c.Tenant, RequestID: c.RequestID}
	r.history[c.Dir] = append([]store.Entry{e}, r.history[c.Dir]...)
	return commit, nil
}

// Shards is the default count: the memory fleet has no shards file. The count's
// own paths are tested on a real repository (shards_test.go).
func (r *memRepo) Shards(ctx context.Context) (int, error) { return store.DefaultShards, nil }

func (r *memRepo) ListDirs(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for d := range r.dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

func (r *memRepo) ReadDir(ctx context.Context, dir string) (string, []store.File, error) {
	r.reads.Add(1)
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	files, ok := r.dirs[dir]
	if !ok {
		return "", nil, fmt.Errorf("%w: %s", store.ErrNotFound, dir)
	}
	return treeOf(files), files, nil
}

// History pages through the folder's entries, newest first, one commit each.
func (r *memRepo) History(ctx context.Context, dir string, page store.HistoryPage) (store.HistoryResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.history[dir]
	i := 0
	if from := page.Before + page.At; from != "" {
		i = slices.IndexFunc(h, func(e store.Entry) bool { return e.Commit.SHA == from })
		switch {
		case i < 0 && page.Before != "":
			return store.HistoryResult{}, &store.Error{Code: store.EINVALID, Fields: []store.FieldError{{Field: "before", Rule: "cursor"}}}
		case i < 0:
			return store.HistoryResult{}, fmt.Errorf("%w: commit %s", store.ErrNotFound, from)
		case page.Before != "":
			i++
		}
	}
	limit := page.Limit
	if limit <= 0 {
		limit = store.DefaultHistoryLimit
	}
	end := min(len(h), i+limit)
	out := store.HistoryResult{Entries: append([]store.Entry(nil), h[i:end]...)}
	if end < len(h) {
		out.Next = h[end-1].Commit.SHA
	}
	return out, nil
}

func (r *memRepo) Ready(context.Context) error { return nil }

// RemovalsSince lists the deletes and purges of every folder's history since t;
// newest first is not kept, which counting does not need.
func (r *memRepo) RemovalsSince(ctx context.Context, since time.Time) ([]store.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.Entry
	for _, entries := range r.history {
		for _, e := range entries {
			if (e.Action == store.ActionDelete || e.Action == store.ActionPurge) && !e.Commit.Time.Before(since) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func (r *memRepo) commitCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commits
}

// shardPrefix is the folder of a store's shard, as Resync takes it.
func shardPrefix(name string) string {
	d := store.Dir(store.DefaultCluster, name)
	return d[:strings.LastIndex(d, "/")]
}

// FindRequest finds a request by its history entry, as the Git repository finds it by
// its Request-Id trailer.
func (r *memRepo) FindRequest(ctx context.Context, id string) (store.Found, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, entries := range r.history {
		for _, e := range entries {
			if e.RequestID == id {
				c := e.Commit
				return store.Found{State: store.RequestCommitted, Store: e.Store, Cluster: e.Cluster, Action: e.Action, Commit: &c}, nil
			}
		}
	}
	return store.Found{}, fmt.Errorf("%w: request %s", store.ErrNotFound, id)
}
