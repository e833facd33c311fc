package gitrepo

import (
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeCache keeps the sub-folders (dirEntries) of the trees read last. Trees are named
// by their content, so an entry is never stale. Two users: the history index's diffs
// (a commit's trees are its child's parent's, so a run of commits decodes each cluster
// tree of up to 4,096 shards once, not twice) and folder reads at the tip (every read
// between two commits shares the root, stores and cluster trees, so a GET or the
// warm-up decodes only the shard's small tree).
type treeCache struct {
	mu   sync.Mutex
	keys []plumbing.Hash
	vals map[plumbing.Hash]map[string]plumbing.Hash
}

const treeCacheSize = 16

// entries is dirEntries(st, h), from the cache when it holds h. Callers hold r.mu
// (read) for st.
func (t *treeCache) entries(st storer.EncodedObjectStorer, h plumbing.Hash) (map[string]plumbing.Hash, error) {
	t.mu.Lock()
	m, ok := t.vals[h]
	t.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := dirEntries(st, h)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.vals[h]; ok {
		return m, nil
	}
	if t.vals == nil {
		t.vals = map[plumbing.Hash]map[string]plumbing.Hash{}
	}
	if len(t.keys) == treeCacheSize {
		delete(t.vals, t.keys[0])
		t.keys = t.keys[1:]
	}
	t.keys = append(t.keys, h)
	t.vals[h] = m
	return m, nil
}

// lookup is lookupTree through the cache for the levels above the folder's parent:
// the folder dir's tree under root, zero if it is not there.
func (t *treeCache) lookup(st storer.EncodedObjectStorer, root plumbing.Hash, dir string) (plumbing.Hash, error) {
	h := root
	if dir == "" || h.IsZero() {
		return h, nil
	}
	parts := strings.Split(dir, "/")
	for i, el := range parts {
		get := t.entries
		if i == len(parts)-1 {
			// The last tree read (a shard's, for a store folder) is one of
			// thousands: caching it would only push the shared ones out.
			get = func(st storer.EncodedObjectStorer, h plumbing.Hash) (map[string]plumbing.Hash, error) {
				return dirEntries(st, h)
			}
		}
		m, err := get(st, h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		next, ok := m[el]
		if !ok {
			return plumbing.ZeroHash, nil
		}
		h = next
	}
	return h, nil
}
