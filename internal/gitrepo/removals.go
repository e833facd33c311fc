package gitrepo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// MaxRemovalWalk bounds how many commits one RemovalsSince call reads. A fleet taking
// 1,000 commits a second makes 3.6 million in an hour; the bound keeps a first call
// on a huge history from stalling the caller, at the price of undercounting beyond it
// (which the cache then never revisits for the same window).
var MaxRemovalWalk = 4_000_000

// Removal is one delete or purge change, with its commit.
type Removal struct {
	Commit  string
	Time    time.Time // the committer time
	Subject string
	ChangeRecord
}

// removalCache remembers the removals on the branch's first-parent line from the tip
// it last saw down to a horizon, so that a check asked after every request reads only
// the commits that arrived since the previous one. Only removals are kept: at a
// thousand commits a second an hour of every change would not fit in memory, while
// removals are the rare event the mass-deletion guard limits.
type removalCache struct {
	mu sync.Mutex
	// tip is the newest commit walked; zero before the first walk.
	tip plumbing.Hash
	// entries are the removals of the walked commits, newest first.
	entries []Removal
	// deeper is where a walk for an earlier time goes on (the first commit not
	// walked down the line), deeperTime its commit time; zero at the root or a
	// shallow boundary.
	deeper     plumbing.Hash
	deeperTime time.Time
}

// reset forgets every walk: the history behind a shallow start arrived, and the walks
// so far stopped at its boundary.
func (c *removalCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tip, c.entries, c.deeper, c.deeperTime = plumbing.ZeroHash, nil, plumbing.ZeroHash, time.Time{}
}

// RemovalsSince returns the delete and purge changes of the commits on the branch's
// first-parent line committed at or after since, newest first, as of the clone's tip
// (which follows the remote with every fetch and push, so every replica that is up
// to date gives the same answer). The walk stops at the first commit older than
// since: commit times on one line are expected to grow, and a clock far behind on one
// writer only shortens the window it is counted in. Both steps of a purge are
// returned; they share a Request-Id.
func (r *Repo) RemovalsSince(ctx context.Context, since time.Time) ([]Removal, error) {
	if !r.historyComplete() {
		return nil, ErrHistoryLoading // the window may reach behind the boundary
	}
	r.mu.RLock()
	tip := r.tip
	r.mu.RUnlock()
	c := &r.removals
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case tip.IsZero():
		return nil, nil
	case c.tip.IsZero():
		w, err := r.walkRemovals(ctx, tip, plumbing.ZeroHash, since)
		if err != nil {
			return nil, err
		}
		c.tip, c.entries, c.deeper, c.deeperTime = tip, w.entries, w.next, w.nextTime
	case tip != c.tip:
		w, err := r.walkRemovals(ctx, tip, c.tip, since)
		if err != nil {
			return nil, err
		}
		if w.found {
			c.entries = append(w.entries, c.entries...)
		} else {
			// The line no longer leads to the tip seen before (the branch was
			// rewritten), or that tip is older than the window: start afresh.
			c.entries, c.deeper, c.deeperTime = w.entries, w.next, w.nextTime
		}
		c.tip = tip
	}
	if !c.deeper.IsZero() && !c.deeperTime.Before(since) {
		// An earlier window than any asked before: go on down the line.
		w, err := r.walkRemovals(ctx, c.deeper, plumbing.ZeroHash, since)
		if err != nil {
			return nil, err
		}
		c.entries = append(c.entries, w.entries...)
		c.deeper, c.deeperTime = w.next, w.nextTime
	}
	// Forget what fell out of the window; a later call for an earlier window walks
	// down again from the first forgotten commit.
	for i, e := range c.entries {
		if e.Time.Before(since) {
			c.deeper, c.deeperTime = plumbing.NewHash(e.Commit), e.Time
			c.entries = c.entries[:i:i]
			break
		}
	}
	return append([]Removal(nil), c.entries...), nil
}

type removalWalk struct {
	entries  []Removal
	found    bool // the walk reached stop
	next     plumbing.Hash
	nextTime time.Time
}

// walkRemovals follows first parents from from until stop, the root, or a commit
// older than since, collecting removals.
func (r *Repo) walkRemovals(ctx context.Context, from, stop plumbing.Hash, since time.Time) (removalWalk, error) {
	var w removalWalk
	h := from
	for n := 0; ; n++ {
		if h == stop && !stop.IsZero() {
			w.found = true
			return w, nil
		}
		if h.IsZero() || n >= MaxRemovalWalk {
			return w, nil
		}
		if err := ctx.Err(); err != nil {
			return w, err
		}
		// The lock is taken per commit: a long walk must not hold the writer up.
		r.mu.RLock()
		co, err := object.GetCommit(r.st, h)
		r.mu.RUnlock()
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return w, nil // shallow boundary: the line ends here
		}
		if err != nil {
			return w, err
		}
		when := co.Committer.When
		if when.Before(since) {
			w.next, w.nextTime = h, when
			return w, nil
		}
		var subject string
		for _, cr := range changeRecords(parseTrailers(co.Message)) {
			if cr.Action != string(ActionDelete) && cr.Action != string(ActionPurge) {
				continue
			}
			if subject == "" {
				subject = firstLine(co.Message)
			}
			w.entries = append(w.entries, Removal{Commit: h.String(), Time: when.UTC(), Subject: subject, ChangeRecord: cr})
		}
		h = plumbing.ZeroHash
		if len(co.ParentHashes) > 0 {
			h = co.ParentHashes[0]
		}
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
