package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/storefleet/storefleet/internal/store"
)

// shardsCache keeps the shard count of the last root tree read: every build and
// every read of the head asks for it, and it changes only with a reshard, so one
// entry saves reading the blob again for each batch.
type shardsCache struct {
	mu   sync.Mutex
	root plumbing.Hash
	n    int
	set  bool
	// tip is the commit whose root root is, when Shards read it: the status side
	// asks for every store it maps to a shard, and need not decode the commit each
	// time.
	tip plumbing.Hash
}

// shardsAt returns the fleet's shard count at root tree root: store.ShardsFile at
// its top, store.DefaultShards when absent (or for the empty branch's zero root).
// A file that does not parse is an error, never taken for the default: writing a
// store to the default layout of a fleet that meant another count would put it in
// a second folder. Callers hold mu (at least for reading).
func (r *Repo) shardsAt(root plumbing.Hash) (int, error) {
	if root.IsZero() {
		return store.DefaultShards, nil
	}
	r.shards.mu.Lock()
	if r.shards.set && r.shards.root == root {
		n := r.shards.n
		r.shards.mu.Unlock()
		return n, nil
	}
	r.shards.mu.Unlock()
	t, err := object.GetTree(r.st, root)
	if err != nil {
		return 0, fmt.Errorf("gitrepo: read root tree for the shard count: %w", err)
	}
	n := store.DefaultShards
	f, err := t.File(store.ShardsFile)
	switch {
	case errors.Is(err, object.ErrFileNotFound):
	case err != nil:
		return 0, fmt.Errorf("gitrepo: read %s: %w", store.ShardsFile, err)
	default:
		data, err := f.Contents()
		if err != nil {
			return 0, fmt.Errorf("gitrepo: read %s: %w", store.ShardsFile, err)
		}
		if n, err = store.ParseShards([]byte(data)); err != nil {
			return 0, fmt.Errorf("gitrepo: %w", err)
		}
	}
	r.shards.mu.Lock()
	if r.shards.root != root {
		r.shards.tip = plumbing.ZeroHash
	}
	r.shards.root, r.shards.n, r.shards.set = root, n, true
	r.shards.mu.Unlock()
	return n, nil
}

// Shards returns the fleet's shard count at the head (shardsAt): the count the
// writer holds the next change's folder to, unless the head moves first.
func (r *Repo) Shards(ctx context.Context) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.shards.mu.Lock()
	if r.shards.set && !r.tip.IsZero() && r.shards.tip == r.tip {
		n := r.shards.n
		r.shards.mu.Unlock()
		return n, nil
	}
	r.shards.mu.Unlock()
	root, err := r.commitRoot(r.tip)
	if err != nil {
		return 0, err
	}
	n, err := r.shardsAt(root)
	if err != nil {
		return 0, err
	}
	r.shards.mu.Lock()
	if r.shards.root == root {
		r.shards.tip = r.tip
	}
	r.shards.mu.Unlock()
	return n, nil
}

// Shards returns the fleet's shard count at the head (Repo.Shards).
func (g Fleet) Shards(ctx context.Context) (int, error) { return g.R.Shards(ctx) }

// checkLayout refuses a change whose folder is not its store's at the count of the
// tree it lands on (n), as a conflict: the change was computed before the count
// changed (a reshard landed meanwhile), and writing it would leave a second folder
// for the store at the old layout. The caller computes it again at the new count.
func (c *Change) checkLayout(n int) error {
	if want := store.DirIn(c.Cluster, c.Store, n); c.Dir != want {
		return fmt.Errorf("%w: %s is not the store's folder at the fleet's %d shards (%s): the shard count changed", ErrConflict, c.Dir, n, want)
	}
	return nil
}
