package gitrepo

import (
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// requestIndex remembers which commit applied a (Request-Id, store) pair, from recent
// history's trailers and from this process's own commits, so a retried request is not
// applied twice. Bounded: the oldest entries go first.
type requestIndex struct {
	mu      sync.Mutex
	max     int
	byKey   map[string]plumbing.Hash
	byID    map[string]string // Request-Id → the store of its latest key, for FindRequest
	order   []string
	indexed map[plumbing.Hash]bool
}

func newRequestIndex(max int) *requestIndex {
	return &requestIndex{max: max, byKey: map[string]plumbing.Hash{}, byID: map[string]string{}, indexed: map[plumbing.Hash]bool{}}
}

func requestKey(requestID, store string) string { return requestID + "\x00" + store }

func (x *requestIndex) lookup(requestID, store string) (plumbing.Hash, bool) {
	if requestID == "" {
		return plumbing.ZeroHash, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	h, ok := x.byKey[requestKey(requestID, store)]
	return h, ok
}

func (x *requestIndex) add(requestID, store string, commit plumbing.Hash) {
	if requestID == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addLocked(requestKey(requestID, store), commit)
}

func (x *requestIndex) addLocked(k string, commit plumbing.Hash) {
	if _, ok := x.byKey[k]; !ok {
		x.order = append(x.order, k)
	}
	x.byKey[k] = commit
	id, st, _ := strings.Cut(k, "\x00")
	x.byID[id] = st
	for len(x.order) > x.max {
		old := x.order[0]
		delete(x.byKey, old)
		if id, st, _ := strings.Cut(old, "\x00"); x.byID[id] == st {
			delete(x.byID, id)
		}
		x.order = x.order[1:]
	}
}

// lookupID returns the commit and store of a Request-Id, whatever its store.
func (x *requestIndex) lookupID(requestID string) (plumbing.Hash, string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st, ok := x.byID[requestID]
	if !ok {
		return plumbing.ZeroHash, "", false
	}
	h, ok := x.byKey[requestKey(requestID, st)]
	return h, st, ok
}

// has reports whether commit was indexed: it is in the branch's history as fetched,
// or this writer pushed it.
func (x *requestIndex) has(commit plumbing.Hash) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.indexed[commit]
}

// walk indexes the commits reachable from tip that are not indexed yet, at most depth
// of them (newest first along every parent).
func (x *requestIndex) walk(s storer.EncodedObjectStorer, tip plumbing.Hash, depth int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	queue := []plumbing.Hash{tip}
	for n := 0; len(queue) > 0 && n < depth; n++ {
		h := queue[0]
		queue = queue[1:]
		if x.indexed[h] {
			continue
		}
		x.indexed[h] = true
		c, err := object.GetCommit(s, h)
		if err != nil {
			// Shallow boundary or missing: history ends here, until the history
			// behind a shallow start arrives and the walk goes on from here.
			delete(x.indexed, h)
			continue
		}
		for _, cr := range changeRecords(parseTrailers(c.Message)) {
			if cr.RequestID != "" {
				k := requestKey(cr.RequestID, cr.Store)
				if _, ok := x.byKey[k]; !ok {
					x.addLocked(k, h)
				}
			}
		}
		queue = append(queue, c.ParentHashes...)
	}
}
