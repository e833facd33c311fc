package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/storefleet/storefleet/internal/store"
)

type logLine struct {
	Fingerprint string `json:"fp,omitempty"`
	store.Outcome
}

func (s *Service) openRequestLog(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		lines := bytes.Split(b, []byte("\n"))
		if len(lines) > s.maxTracked {
			lines = lines[len(lines)-s.maxTracked:]
		}
		for _, ln := range lines {
			var l logLine
			// A line cut short by a crash is skipped; the change it describes is in Git.
			if len(ln) == 0 || json.Unmarshal(ln, &l) != nil || l.RequestID == "" {
				continue
			}
			r := &request{fingerprint: l.Fingerprint, done: make(chan struct{}), outcome: l.Outcome}
			if l.State == store.RequestFailed {
				r.err = &store.Error{Code: l.ErrCode, Message: l.Reason}
			}
			close(r.done)
			if _, ok := s.requests[l.RequestID]; !ok {
				s.order = append(s.order, l.RequestID)
			}
			s.requests[l.RequestID] = r
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// A line cut short by a crash must not swallow the next one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, _ = f.Write([]byte{'\n'})
		}
	}
	s.logF = f
	return nil
}

func (s *Service) logRequest(fp string, out store.Outcome) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.logF == nil {
		return
	}
	b, err := json.Marshal(logLine{Fingerprint: fp, Outcome: out})
	if err != nil {
		return
	}
	if _, err := s.logF.Write(append(b, '\n')); err != nil {
		s.log.Warn("request log write failed", "err", err)
	}
}

// once runs fn at most once per request id: a retry with the same id waits for and
// returns the first outcome, also after a restart (the id is then found in Git).
func (s *Service) once(ctx context.Context, m store.Meta, storeName string, action store.Action, fn func() (store.Outcome, error)) (store.Outcome, error) {
	if m.DryRun {
		return fn()
	}
	if m.Continues {
		return s.continued(ctx, m, storeName, action, fn)
	}
	s.mu.Lock()
	if r, ok := s.requests[m.RequestID]; ok {
		s.mu.Unlock()
		if m.Fingerprint != "" && r.fingerprint != "" && r.fingerprint != m.Fingerprint {
			return store.Outcome{}, &store.Error{Code: store.EINVALID, Message: "Idempotency-Key was already used for a different request",
				Fields: []store.FieldError{{Field: "Idempotency-Key", Rule: "reused", Message: "this key belongs to a different request; use a new key"}}}
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return store.Outcome{}, ctx.Err()
		}
		out := r.outcome
		if out.State == store.RequestPending {
			out = s.settle(ctx, m.RequestID, r)
		}
		if out.State != store.RequestFailed || out.ErrCode != store.EUNAVAILABLE {
			return out, r.err
		}
		// It certainly did not land: a retry under the same key runs anew.
		s.mu.Lock()
	}
	r := &request{fingerprint: m.Fingerprint, done: make(chan struct{})}
	s.requests[m.RequestID] = r
	s.order = append(s.order, m.RequestID)
	s.evictLocked()
	s.mu.Unlock()

	out, err := s.runOnce(ctx, m, storeName, action, fn)
	if err != nil {
		out.ErrCode = store.ErrorCode(err)
	}
	r.outcome, r.err = out, err
	close(r.done)
	if out.State == store.RequestPending {
		// Kept, and on disk: it must answer pending, also after a restart, until
		// the repository decides it.
		s.logRequest(m.Fingerprint, out)
		return out, nil
	}
	if code := store.ErrorCode(err); code != store.EINTERNAL && code != store.EUNAVAILABLE && !refusedInput(err) {
		s.logRequest(m.Fingerprint, out)
	} else {
		// Not a decided outcome (the push failed, the client went away), or input the
		// client will correct: forget it so that a retry under the same key really
		// runs.
		s.mu.Lock()
		if s.requests[m.RequestID] == r {
			delete(s.requests, m.RequestID)
		}
		s.mu.Unlock()
	}
	return out, err
}

func (s *Service) runOnce(ctx context.Context, m store.Meta, storeName string, action store.Action, fn func() (store.Outcome, error)) (store.Outcome, error) {
	out, err := fn()
	if err != nil {
		return store.Outcome{RequestID: m.RequestID, Store: storeName, Action: action, State: store.RequestFailed, Reason: store.ErrorMessage(err)}, err
	}
	return out, nil
}

func (s *Service) evictLocked() {
	for len(s.order) > s.maxTracked {
		id := s.order[0]
		s.order = s.order[1:]
		if r, ok := s.requests[id]; ok {
			select {
			case <-r.done:
				delete(s.requests, id)
			default:
				// Still running: keep it, it will be evicted on a later round.
				s.order = append(s.order, id)
				return
			}
		}
	}
}

// Request returns one request's outcome: from memory or the request log while this
// process knows it, else from the repository (a cut-off push it is deciding, or the
// commit's Request-Id trailer). A pending request is asked about again each time,
// until the repository decides it.
func (s *Service) Request(ctx context.Context, id string) (store.Outcome, error) {
	s.mu.Lock()
	r, ok := s.requests[id]
	s.mu.Unlock()
	if ok {
		select {
		case <-r.done:
		default:
			return store.Outcome{RequestID: id, State: store.RequestPending}, nil
		}
		if r.outcome.State == store.RequestPending || r.outcome.State == store.RequestAwaitingApproval {
			return s.settle(ctx, id, r), nil
		}
		return r.outcome, nil
	}
	f, err := s.repo.FindRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Outcome{}, store.Errorf(store.ENOTFOUND, "request %q not found: neither this service's request log nor the fleet repository's history (its Request-Id trailers) knows it", id)
	}
	if err != nil {
		return store.Outcome{}, err
	}
	return foundOutcome(store.Outcome{RequestID: id, Store: f.Store, Action: f.Action}, f), nil
}

// settle asks the repository about a pending request and, once it is decided,
// records the outcome (in memory and in the request log). It returns the outcome as
// known now.
func (s *Service) settle(ctx context.Context, id string, r *request) store.Outcome {
	f, err := s.repo.FindRequest(ctx, id)
	if err == nil && f.State == store.RequestAwaitingApproval && f.Review != nil {
		// Still under review: the pull request's reviewers and checks as last seen,
		// nothing recorded (it is not decided).
		out := r.outcome
		rv := *f.Review
		rv.Required = true
		out.Review = &rv
		return out
	}
	if err != nil || f.State == store.RequestPending || f.State == store.RequestAwaitingApproval || f.State == "" {
		// Not decided, or not known to this repository (an in-memory clone that
		// restarted): pending is still the truth.
		return r.outcome
	}
	out := foundOutcome(r.outcome, f)
	decided := &request{fingerprint: r.fingerprint, done: make(chan struct{}), outcome: out}
	if out.State == store.RequestFailed {
		decided.err = &store.Error{Code: store.EUNAVAILABLE, Message: out.Reason}
	}
	close(decided.done)
	s.mu.Lock()
	if s.requests[id] == r {
		s.requests[id] = decided
	}
	s.mu.Unlock()
	s.logRequest(r.fingerprint, out)
	if out.State == store.RequestCommitted && f.Store != "" && f.Cluster != "" {
		// The store changed in the fleet repository behind the index's back.
		s.refresh(ctx, f.Store, f.Cluster, "")
	}
	return out
}

// foundOutcome puts what the repository found over an outcome.
func foundOutcome(out store.Outcome, f store.Found) store.Outcome {
	out.State, out.Commit = f.State, f.Commit
	if f.Review != nil {
		rv := *f.Review
		rv.Required = true
		out.Review = &rv
	}
	if out.Store == "" {
		out.Store = f.Store
	}
	if out.Action == "" {
		out.Action = f.Action
	}
	switch f.State {
	case store.RequestCommitted:
		out.Reason, out.ErrCode = "", ""
		if out.Phase == store.PhaseAwaitingApproval {
			// Its pull request was merged: from here the store's own phase
			// (committed … ready) tells the rest.
			out.Phase = store.PhaseMerged
		}
	case store.RequestRejected:
		out.Phase = store.PhaseRejected
	case store.RequestFailed:
		// Nothing landed, so the change leads the store nowhere.
		out.Reason, out.ErrCode, out.Phase = f.Reason, store.EUNAVAILABLE, ""
	}
	return out
}

// refusedInput reports whether err refuses the request for what it asks (a 422), as
// opposed to the state it meets or a failure: such a refusal does not use up the
// request's Idempotency-Key.
func refusedInput(err error) bool {
	switch store.ErrorCode(err) {
	case store.EINVALID:
		return true
	case store.ECONFLICT:
		// A conflict naming fields (a plan with less storage, an immutable field) is
		// about the input; one without is about the store's state.
		return len(store.FieldErrors(err)) > 0
	}
	return false
}
