package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// A first start with no clone on disk fetches the branch's newest firstFetchDepth
// commits only: the tip's tree is all that reads of stores and the writer need, while
// the whole history of a large fleet is what made that start take seconds (the server
// builds the pack of every commit, each with its own 4,096-entry cluster tree). The
// history follows in the background (deepen), and until it is complete every answer
// that needs it says so (ErrHistoryLoading) rather than give a history cut at the
// boundary as if it were all. A history no longer than the depth arrives whole, with
// no boundary: a small fleet starts as it always did.
//
// Pushing from the shallow clone needs nothing more: the writer sends the objects of
// its own commits only (never go-git's Remote.Push, whose object walk needs the
// parents' history), and the server holds everything older.

// ErrHistoryLoading: the clone started from the tip alone and the history before it is
// still being fetched; the answer would be incomplete. Nothing was changed: ask again
// shortly.
var ErrHistoryLoading = errors.New("gitrepo: the fleet's history is still being fetched")

// shallowStart tells whether the first fetch may fetch the tip alone: only a clone with
// nothing yet, and only from a smart server (git's own, over HTTP or SSH) that offers
// shallow fetches. go-git's in-process file transport does not, and a path remote is
// fast anyway.
func (r *Repo) shallowStart(caps *capability.List) bool {
	if !r.tip.IsZero() || r.opts.fullFirstFetch || !caps.Supports(capability.Shallow) {
		return false
	}
	switch r.ep.Protocol {
	case "http", "https", "ssh":
		return true
	}
	return false
}

// shallowBoundary returns the clone's shallow commits (none: the history is complete).
func (r *Repo) shallowBoundary() []plumbing.Hash {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.st.(storer.ShallowStorer)
	if !ok {
		return nil
	}
	h, err := s.Shallow()
	if err != nil {
		return nil
	}
	return h
}

// firstFetchDepth is how many commits a first start fetches. More than one: a fleet
// with a short history (every test's, a new installation's) gets all of it in the first
// fetch and never answers "history still loading"; a long one saves all but these.
const firstFetchDepth = 100

func (r *Repo) firstFetchDepth() int {
	if r.opts.shallowDepth > 0 {
		return r.opts.shallowDepth
	}
	return firstFetchDepth
}

// historyWait is how long Open waits for the history after a shallow start: a fleet
// just past firstFetchDepth may get the rest within it and start whole; a long
// history does not, and the replica serves meanwhile.
const historyWait = 200 * time.Millisecond

// awaitHistory waits up to historyWait (or ctx) for the history to be complete.
func (r *Repo) awaitHistory(ctx context.Context) {
	t := time.NewTimer(historyWait)
	defer t.Stop()
	select {
	case <-r.historyDone:
	case <-t.C:
	case <-ctx.Done():
	}
}

// historyComplete reports whether the clone holds the whole history of its tip.
func (r *Repo) historyComplete() bool { return !r.incomplete.Load() }

// recordShallow merges the server's shallow-info answer into the clone's boundary
// (the shallow file of an on-disk clone, as git keeps it): shallow commits join it,
// unshallowed ones leave it, as git's client updates its shallow file. A restart
// before the history arrived thus goes on fetching it. A boundary left non-empty marks
// the history incomplete. The server answers only requests with a depth; any other
// fetch leaves the boundary as it was.
func (r *Repo) recordShallow(shallows, unshallows []plumbing.Hash) error {
	if len(shallows) == 0 && len(unshallows) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.st.(storer.ShallowStorer)
	if !ok {
		if len(shallows) > 0 {
			r.incomplete.Store(true)
		}
		return nil
	}
	old, err := s.Shallow()
	if err != nil {
		return storageErr("read the clone's shallow boundary", err)
	}
	gone := map[plumbing.Hash]bool{}
	for _, h := range unshallows {
		gone[h] = true
	}
	seen := map[plumbing.Hash]bool{}
	var merged []plumbing.Hash
	for _, h := range append(old, shallows...) {
		if !gone[h] && !seen[h] {
			seen[h] = true
			merged = append(merged, h)
		}
	}
	if len(merged) == 0 {
		// Everything unshallowed: the deepen loop, finding no boundary, marks the
		// history complete.
		if err := r.dropShallow(); err != nil {
			return storageErr("drop the clone's shallow boundary", err)
		}
		return nil
	}
	if err := s.SetShallow(merged); err != nil {
		return storageErr("record the clone's shallow boundary", err)
	}
	r.incomplete.Store(true)
	return nil
}

// deepenLoop fetches the history behind the shallow boundary until it is complete or
// the Repo closes, then builds the history index on it. Failures (the remote gone
// meanwhile) are retried with the background sync's back-off.
func (r *Repo) deepenLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	if h := r.opts.holdHistory; h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return
		}
	}
	wait := syncBackoffMin
	for {
		fctx, fcancel := context.WithTimeout(ctx, syncFetchTimeout)
		err := r.deepen(fctx)
		fcancel()
		if err == nil {
			r.hist.build(r)
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("gitrepo: the fleet's history could not be fetched yet; histories answer that it is loading", "retry_in", wait, "err", r.red.err(err))
		jitter := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(jitter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait = min(wait*2, syncBackoffMax)
	}
}

// deepen fetches the whole history of the remote's tip, as a clone would (no haves: a
// shallow clone's haves would tell the server it holds what lies behind its boundary),
// then drops the boundary once every commit on it has its parents.
func (r *Repo) deepen(ctx context.Context) error {
	boundary := r.shallowBoundary()
	if len(boundary) == 0 {
		r.incomplete.Store(false)
		close(r.historyDone)
		return nil
	}
	sess, err := r.uploadPackSession()
	if err != nil {
		return fmt.Errorf("gitrepo: fetch history %s: %w", r.red.shown, err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return fmt.Errorf("gitrepo: fetch history %s: %w", r.red.shown, err)
	}
	if err == nil {
		if want, ok := ar.References[r.branchRef.String()]; ok {
			// No shallow lines either: without a depth they would make the
			// server stop its walk at our boundary, the very history wanted.
			if err := r.fetchObjects(ctx, sess, ar.Capabilities, want, plumbing.ZeroHash, nil, 0); err != nil {
				return err
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range boundary {
		cm, err := object.GetCommit(r.st, h)
		if err != nil {
			return fmt.Errorf("gitrepo: fetch history: boundary commit %s: %w", h, err)
		}
		for _, p := range cm.ParentHashes {
			if r.st.HasEncodedObject(p) != nil {
				// The branch was rewritten past the boundary: the tip the
				// server has no longer leads to it. Try again later.
				return fmt.Errorf("gitrepo: fetch history: parent %s of %s not on the branch", p, h)
			}
		}
	}
	if err := r.dropShallow(); err != nil {
		return storageErr("drop the clone's shallow boundary", err)
	}
	// The Request-Id index's walk stopped at the boundary: go on from there.
	for _, h := range boundary {
		cm, err := object.GetCommit(r.st, h)
		if err != nil {
			continue
		}
		for _, p := range cm.ParentHashes {
			r.idx.walk(r.st, p, r.opts.IdempotencyDepth)
		}
	}
	r.removals.reset()
	r.incomplete.Store(false)
	close(r.historyDone)
	r.log.Info("gitrepo: the fleet's history is complete", "tip", r.tip)
	return nil
}

// dropShallow removes the boundary: git's shallow file of an on-disk clone goes, as
// git removes it once a clone is complete. Callers hold mu.
func (r *Repo) dropShallow() error {
	if r.opts.Dir != "" {
		err := os.Remove(filepath.Join(r.opts.Dir, "shallow"))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		return err
	}
	if s, ok := r.st.(storer.ShallowStorer); ok {
		return s.SetShallow(nil)
	}
	return nil
}
