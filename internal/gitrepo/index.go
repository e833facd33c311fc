package gitrepo

import (
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
	order   []string
	indexed map[plumbing.Hash]bool
}

func newRequestIndex(max int) *requestIndex {
	return &requestIndex{max: max, byKey: map[string]plumbing.Hash{}, indexed: map[plumbing.Hash]bool{}}
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
	for len(x.order) > x.max {
		delete(x.byKey, x.order[0])
		x.order = x.order[1:]
	}
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
			continue // shallow boundary or missing: history ends here
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
