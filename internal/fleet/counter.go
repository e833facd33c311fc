package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

var _ store.Counter = (*Service)(nil)

// Stores counts tenant's stores in the index: active, retained and purging ones
// (a deleted store still holds its data and its name; a purged one is gone). A
// store whose spec is not read yet is read once, as for List; after the warm-up
// the count is answered from memory. Creates still in flight are not counted.
func (s *Service) Stores(ctx context.Context, tenant string) (int, error) {
	s.mu.Lock()
	if len(s.unread) == 0 {
		// Every entry is read: the count kept beside the index (countLocked) is the
		// answer. A walk of the index here cost ~0.4 ms per create at 10,000 stores,
		// under the lock every request of the service takes.
		n := s.tenants[tenant]
		s.mu.Unlock()
		return n, nil
	}
	var unknown []string
	n := 0
	for name, e := range s.index {
		switch {
		case !e.loaded:
			unknown = append(unknown, name)
		case !e.unreadable && e.store.Tenant == tenant:
			n++
		}
	}
	s.mu.Unlock()
	for _, name := range unknown {
		e, err := s.load(ctx, name)
		if store.ErrorCode(err) == store.ENOTFOUND || errors.Is(err, errUnreadable) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if e.store.Tenant == tenant {
			n++
		}
	}
	return n, nil
}

// Removals counts the delete and purge requests committed since t, from the fleet
// repository's history, so that every replica counts the same. A request counts
// once: the two steps of a purge share its Request-Id.
func (s *Service) Removals(ctx context.Context, since time.Time) (int, error) {
	entries, err := s.repo.RemovalsSince(ctx, since)
	if err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if e.Action != store.ActionDelete && e.Action != store.ActionPurge {
			continue
		}
		k := e.RequestID
		if k == "" {
			// A removal pushed by hand with no Request-Id: each one counts.
			k = "commit:" + e.Commit.SHA
		}
		seen[k+"\x00"+e.Store] = true
	}
	return len(seen), nil
}
