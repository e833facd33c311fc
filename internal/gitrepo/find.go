package gitrepo

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// historySearchDepth bounds the walk FindRequest makes, once per process, beyond the
// Request-Id index: requests older than that many commits are not found by id (their
// store's history still shows them).
var historySearchDepth = 50000

// deepIndex is the Request-Ids of the history walked once for FindRequest, newest
// commit per id. Commits after the walk are in the writer's index (fetches and pushes
// add theirs), so one walk serves every later miss.
type deepIndex struct {
	mu     sync.Mutex
	walked bool
	hits   map[string]plumbing.Hash
}

// FindRequest tells what became of request id: a change the write deadline cut off
// (pending until the resolver decides, then committed or failed), or a change found by
// its Request-Id trailer in the branch's history. ErrNotFound if neither knows it.
func (r *Repo) FindRequest(ctx context.Context, id string) (RequestInfo, error) {
	if e, ok := r.limbo.get(id); ok {
		if h, found := r.idx.lookup(e.ID, e.Store); found && e.State == RequestPending {
			// A fetch brought the commit before the resolver's next round.
			e.State, e.Commit = RequestCommitted, h.String()
		}
		info := RequestInfo{ID: e.ID, Store: e.Store, Cluster: e.Cluster, Action: e.Action, State: e.State,
			Commit: e.Commit, Reason: e.Reason}
		if e.State == RequestCommitted {
			if c, ok := r.requestIn(plumbing.NewHash(e.Commit), id, e.Store); ok {
				info.Time = c.Time
			}
		}
		return info, nil
	}
	if h, st, ok := r.idx.lookupID(id); ok {
		if info, ok := r.requestIn(h, id, st); ok {
			return info, nil
		}
	}
	if !r.historyComplete() {
		// Not in the index, and the walk would stop at the shallow boundary: "not
		// found" could be wrong.
		return RequestInfo{}, ErrHistoryLoading
	}
	h, err := r.deepLookup(ctx, id)
	if err != nil {
		return RequestInfo{}, err
	}
	if !h.IsZero() {
		if info, ok := r.requestIn(h, id, ""); ok {
			return info, nil
		}
	}
	return RequestInfo{}, fmt.Errorf("%w: request %s", ErrNotFound, id)
}

// requestIn reads request id's change (for store, or any store if empty) from commit
// h's trailers.
func (r *Repo) requestIn(h plumbing.Hash, id, st string) (RequestInfo, bool) {
	r.mu.RLock()
	c, err := object.GetCommit(r.st, h)
	r.mu.RUnlock()
	if err != nil {
		return RequestInfo{}, false
	}
	for _, cr := range changeRecords(parseTrailers(c.Message)) {
		if cr.RequestID == id && (st == "" || cr.Store == st) {
			return RequestInfo{ID: id, Store: cr.Store, Cluster: cr.Cluster, Tenant: cr.Tenant, Action: Action(cr.Action),
				State: RequestCommitted, Commit: h.String(), Time: c.Committer.When.UTC()}, true
		}
	}
	return RequestInfo{}, false
}

// deepLookup walks the history once (bounded by historySearchDepth) and answers from
// what that walk saw.
func (r *Repo) deepLookup(ctx context.Context, id string) (plumbing.Hash, error) {
	d := &r.limbo.deep
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.walked {
		hits, err := r.walkRequestIDs(ctx, historySearchDepth)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		d.hits, d.walked = hits, true
	}
	return d.hits[id], nil
}

func (r *Repo) walkRequestIDs(ctx context.Context, depth int) (map[string]plumbing.Hash, error) {
	hits := map[string]plumbing.Hash{}
	r.mu.RLock()
	tip := r.tip
	r.mu.RUnlock()
	if tip.IsZero() {
		return hits, nil
	}
	seen := map[plumbing.Hash]bool{tip: true}
	queue := []plumbing.Hash{tip}
	for n := 0; len(queue) > 0 && n < depth; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := queue[0]
		queue = queue[1:]
		// The lock is taken per commit: a long walk must not hold the writer up.
		r.mu.RLock()
		c, err := object.GetCommit(r.st, h)
		r.mu.RUnlock()
		if err != nil {
			continue // shallow boundary: history ends here
		}
		for _, cr := range changeRecords(parseTrailers(c.Message)) {
			if _, ok := hits[cr.RequestID]; cr.RequestID != "" && !ok {
				hits[cr.RequestID] = h
			}
		}
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return hits, nil
}
