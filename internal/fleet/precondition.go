package fleet

import (
	"context"
	"slices"

	"github.com/storefleet/storefleet/internal/store"
)

// lastCommit returns the commit that last changed the store cur: known from this
// process's own commits, else read from the folder's history once and kept in the
// index. The zero Commit means the history names none (a folder pushed without the
// writer's trailers).
func (s *Service) lastCommit(ctx context.Context, name string, cur indexed) (store.Commit, error) {
	if cur.commit.SHA != "" {
		return cur.commit, nil
	}
	dir, err := s.dirOf(ctx, cur.store)
	if err != nil {
		return store.Commit{}, err
	}
	res, err := s.repo.History(ctx, dir, store.HistoryPage{})
	h := res.Entries
	if err != nil || len(h) == 0 {
		return store.Commit{}, err
	}
	s.mu.Lock()
	if e, ok := s.index[name]; ok && e.commit.SHA == "" {
		e.commit = h[0].Commit
	}
	s.mu.Unlock()
	return h[0].Commit, nil
}

// checkIfMatch holds an update or delete to the caller's precondition (m.IfMatch):
// the store's last commit must be one the caller names. Callers hold the store's
// lock (lockName), and every commit of this service updates the index's commit
// before it lets go of that lock, so no change can land between this check and the
// caller's commit; a push from outside is caught by the writer's Base check.
//
// done reports that the request is answered here: refused with EPRECONDITION, or,
// for a client's retry (Idempotency-Key) of the very change that made the store's
// last commit, answered with that commit, as the retry of any applied change is. A
// precondition that no longer holds must not turn such a retry into a 412.
func (s *Service) checkIfMatch(ctx context.Context, m store.Meta, name string, cur indexed, action store.Action) (out store.Outcome, done bool, err error) {
	if len(m.IfMatch) == 0 {
		return store.Outcome{}, false, nil
	}
	last, err := s.lastCommit(ctx, name, cur)
	if err != nil {
		return store.Outcome{}, true, err
	}
	if last.SHA != "" && slices.Contains(m.IfMatch, last.SHA) {
		return store.Outcome{}, false, nil
	}
	if m.ClientKey && !m.DryRun {
		if dir, err := s.dirOf(ctx, cur.store); err != nil {
			return store.Outcome{}, true, err
		} else if res, err := s.repo.History(ctx, dir, store.HistoryPage{}); err == nil && len(res.Entries) > 0 && res.Entries[0].RequestID == m.RequestID {
			c := res.Entries[0].Commit
			return store.Outcome{RequestID: m.RequestID, Store: name, Action: action, State: store.RequestCommitted,
				Commit: &c, Phase: cur.state.Phase()}, true, nil
		}
	}
	if last.SHA == "" {
		return store.Outcome{}, true, store.Errorf(store.EPRECONDITION,
			"store %q has no commit of the writer's in its history, so no version can match (If-Match)", name)
	}
	return store.Outcome{}, true, store.Errorf(store.EPRECONDITION,
		"store %q has changed since the version you name (If-Match); its last commit is %s: read it again and decide anew", name, last.SHA)
}
