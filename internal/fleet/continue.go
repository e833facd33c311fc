package fleet

import (
	"context"

	"github.com/storefleet/storefleet/internal/store"
)

// continued runs a later step of an earlier request under that request's id
// (Meta.Continues: the second purge step gitops-api commits once Flux applied the
// first). once would answer it with the first step's outcome, as for a retry, so it
// runs here instead; the name lock and the state check inside fn keep it from
// racing a user's own second purge. Once it committed, the request's recorded
// outcome becomes this step's, so GET /api/v1/requests/{id} and a retry with the
// same Idempotency-Key report where the request ended, not where it stopped half
// way.
func (s *Service) continued(ctx context.Context, m store.Meta, storeName string, action store.Action, fn func() (store.Outcome, error)) (store.Outcome, error) {
	out, err := s.runOnce(ctx, m, storeName, action, fn)
	if err != nil {
		out.ErrCode = store.ErrorCode(err)
		// A failed later step leaves the request's first outcome standing: that
		// step did land.
		return out, err
	}
	s.mu.Lock()
	fp := ""
	old, known := s.requests[m.RequestID]
	if known {
		fp = old.fingerprint
	}
	r := &request{fingerprint: fp, done: make(chan struct{}), outcome: out}
	close(r.done)
	s.requests[m.RequestID] = r
	if !known {
		s.order = append(s.order, m.RequestID)
		s.evictLocked()
	}
	s.mu.Unlock()
	s.logRequest(fp, out)
	return out, nil
}
