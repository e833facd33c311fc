package gitrepo

import (
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeCache keeps the sub-folders (dirEntries) of the trees read last, for folder reads
// at the tip: every read between two commits shares the root, stores and cluster
// trees, so a GET or the warm-up decodes only the shard's small tree. Trees are named
// by their content, so an entry is never stale.
type treeCache struct {
	lru hashLRU[map[string]plumbing.Hash]
}

// rawTreeCache keeps the encoded trees the history index's diffs read last: a commit's
// trees are its child's parent's, so a run of commits reads each cluster tree of up to
// 4,096 shards once, not twice.
type rawTreeCache struct{ lru hashLRU[[]byte] }

const treeCacheSize = 16

// hashLRU keeps the treeCacheSize values read last, by object hash.
type hashLRU[V any] struct {
	mu   sync.Mutex
	keys []plumbing.Hash
	vals map[plumbing.Hash]V
}

// get returns h's value from the cache, or read's, which it keeps.
func (c *hashLRU[V]) get(h plumbing.Hash, read func() (V, error)) (V, error) {
	c.mu.Lock()
	v, ok := c.vals[h]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.vals[h]; ok {
		return v, nil
	}
	if c.vals == nil {
		c.vals = map[plumbing.Hash]V{}
	}
	if len(c.keys) == treeCacheSize {
		delete(c.vals, c.keys[0])
		c.keys = c.keys[1:]
	}
	c.keys = append(c.keys, h)
	c.vals[h] = v
	return v, nil
}

// entries is dirEntries(st, h), from the cache when it holds h. Callers hold r.mu
// (read) for st.
func (t *treeCache) entries(st storer.EncodedObjectStorer, h plumbing.Hash) (map[string]plumbing.Hash, error) {
	return t.lru.get(h, func() (map[string]plumbing.Hash, error) { return dirEntries(st, h) })
}

// raw is readRawTree(st, h), from the cache when it holds h. Callers hold r.mu (read)
// for st.
func (t *rawTreeCache) raw(st storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	return t.lru.get(h, func() ([]byte, error) { return readRawTree(st, h) })
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
