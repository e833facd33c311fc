package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/storefleet/storefleet/internal/store"
)

// Create validates, renders and commits a new store.
func (s *Service) Create(ctx context.Context, in store.Store, m store.Meta) (store.Outcome, error) {
	return s.once(ctx, m, in.Name, store.ActionCreate, func() (store.Outcome, error) {
		if in.Cluster == "" {
			in.Cluster = s.cluster
		}
		// The access policy names the tenant before this; with authentication off
		// nobody does, and the store is the default tenant's.
		if in.Tenant == "" {
			in.Tenant = s.tenant
		}
		st := in.WithDefaults(s.baseDomain)
		if err := s.admit(ctx, st, nil, dropDerived(st.Validate(), in)); err != nil {
			return store.Outcome{}, err
		}
		s.mu.Lock()
		// With a client's Idempotency-Key the writer decides: it answers a retry of
		// an applied create (also from before a restart) with the first commit, and
		// any other create of an existing store with store.ErrExists.
		if _, ok := s.index[st.Name]; ok && !m.ClientKey {
			s.mu.Unlock()
			return store.Outcome{}, store.Errorf(store.ECONFLICT, "store %q already exists", st.Name)
		}
		if s.pending[st.Name] && !m.DryRun {
			s.mu.Unlock()
			return store.Outcome{}, store.Errorf(store.ECONFLICT, "a create for store %q is in progress", st.Name)
		}
		if !m.DryRun {
			s.pending[st.Name] = true
		}
		s.mu.Unlock()
		if !m.DryRun {
			defer func() {
				s.mu.Lock()
				delete(s.pending, st.Name)
				s.mu.Unlock()
			}()
		}
		release, err := s.claimDomain(ctx, st.Name, st.Domain, !m.DryRun)
		defer release()
		if err != nil {
			return store.Outcome{}, err
		}
		n, err := s.repo.Shards(ctx)
		if err != nil {
			return store.Outcome{}, err
		}
		files, err := s.render.InFleet(n).Render(st, store.StateActive)
		if err != nil {
			return store.Outcome{}, err
		}
		return s.commit(ctx, m, st, store.StateActive, store.ActionCreate, n, "", nil, files, nil)
	})
}

// Update applies change to the current store (a merge patch, in the HTTP layer) and
// commits the result. change gets a copy of the current store.
func (s *Service) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m store.Meta) (store.Outcome, error) {
	return s.once(ctx, m, name, store.ActionUpdate, func() (store.Outcome, error) {
		unlock := s.lockName(name)
		defer unlock()
		cur, err := s.load(ctx, name)
		if err != nil {
			return store.Outcome{}, err
		}
		if out, done, err := s.checkIfMatch(ctx, m, name, cur, store.ActionUpdate); done {
			return out, err
		}
		if cur.state != store.StateActive {
			return store.Outcome{}, store.Errorf(store.ECONFLICT, "store %q is %s; only an active store can be changed", name, cur.state)
		}
		next, err := change(cur.store)
		if err != nil {
			return store.Outcome{}, err
		}
		if next.Tenant == "" {
			// Not named in the change (a merge patch that leaves it out, or
			// removes it): the store stays its tenant's.
			next.Tenant = cur.store.Tenant
		}
		if next.Tenant != cur.store.Tenant {
			// Refused here and not only by the access policy, so that no path
			// (auth off, an admin of every tenant) moves a store between tenants:
			// its history, quota and audit trail belong to the first.
			return store.Outcome{}, &store.Error{Code: store.EINVALID, Message: "a store's tenant cannot change",
				Fields: []store.FieldError{{Field: "tenant", Rule: "immutable",
					Message: fmt.Sprintf("tenant is %s and cannot change; create a store in the other tenant instead", cur.store.Tenant)}}}
		}
		next = next.WithDefaults(s.baseDomain)
		if err := s.admit(ctx, next, &cur.store, next.Validate()); err != nil {
			return store.Outcome{}, err
		}
		if err := store.ValidateUpdate(cur.store, next); err != nil {
			return store.Outcome{}, err
		}
		if next.Domain != cur.store.Domain {
			release, err := s.claimDomain(ctx, name, next.Domain, !m.DryRun)
			defer release()
			if err != nil {
				return store.Outcome{}, err
			}
		}
		return s.renderAndCommit(ctx, m, cur, next, store.StateActive, store.ActionUpdate)
	})
}

// Delete removes the store's release and keeps its data (two-phase delete). With
// purge set, a retained store's namespace is made prunable; a purge of a store that
// is already purging removes its folder, and with it the namespace and the data.
// The two purge steps are separate calls because Flux must apply the first (the
// namespace losing its prune: disabled annotation) before the second can prune it.
func (s *Service) Delete(ctx context.Context, name string, purge bool, m store.Meta) (store.Outcome, error) {
	action := store.ActionDelete
	if purge {
		action = store.ActionPurge
	}
	return s.once(ctx, m, name, action, func() (store.Outcome, error) {
		unlock := s.lockName(name)
		defer unlock()
		cur, err := s.load(ctx, name)
		if err != nil {
			return store.Outcome{}, err
		}
		if out, done, err := s.checkIfMatch(ctx, m, name, cur, action); done {
			return out, err
		}
		switch {
		case !purge && cur.state == store.StateActive:
			return s.renderAndCommit(ctx, m, cur, cur.store, store.StateRetained, store.ActionDelete)
		case !purge:
			return store.Outcome{}, store.Errorf(store.ECONFLICT, "store %q is already deleted (%s); purge it with ?purge=true", name, cur.state)
		case cur.state == store.StateActive:
			return store.Outcome{}, store.Errorf(store.ECONFLICT, "store %q is active; delete it first, purge removes only a deleted store's data", name)
		case cur.state == store.StateRetained:
			return s.renderAndCommit(ctx, m, cur, cur.store, store.StatePurging, store.ActionPurge)
		default: // purging: remove the folder
			n, err := s.repo.Shards(ctx)
			if err != nil {
				return store.Outcome{}, err
			}
			tree, old, err := s.repo.ReadDir(ctx, store.DirIn(cur.store.Cluster, cur.store.Name, n))
			if err != nil {
				return store.Outcome{}, err
			}
			return s.commit(ctx, m, cur.store, store.StatePurged, store.ActionPurge, n, tree, old, nil, nil)
		}
	})
}

func (s *Service) renderAndCommit(ctx context.Context, m store.Meta, cur indexed, next store.Store, state store.State, action store.Action) (store.Outcome, error) {
	// One count for the render, the read and the commit: the writer refuses the
	// change if the fleet's count moved on before it lands (a reshard), and the
	// caller's retry computes all three again at the new count.
	n, err := s.repo.Shards(ctx)
	if err != nil {
		return store.Outcome{}, err
	}
	files, err := s.render.InFleet(n).Render(next, state)
	if err != nil {
		return store.Outcome{}, err
	}
	tree, old, err := s.repo.ReadDir(ctx, store.DirIn(cur.store.Cluster, cur.store.Name, n))
	if errors.Is(err, store.ErrNotFound) {
		return store.Outcome{}, store.Errorf(store.ENOTFOUND, "store %q is no longer in the fleet repository", cur.store.Name)
	}
	if err != nil {
		return store.Outcome{}, err
	}
	if sameFiles(old, files) {
		return unchanged(m, next, state, action), nil
	}
	return s.commit(ctx, m, next, state, action, n, tree, old, files, s.unshared(cur, next, state))
}

// unshared names the shared files the change from cur to next (in state) may leave
// no store using: the source of cur's version when next is deleted or on another
// version. The writer decides from the commit's tree whether one really is unused.
// It is named even when this index knows another store of the version: that store
// may be leaving the version at this moment (two last stores deleted together),
// and the writer's answer, kept by tree hash, costs little (docs/benchmarks.md).
func (s *Service) unshared(cur indexed, next store.Store, state store.State) []string {
	if cur.state != store.StateActive {
		return nil
	}
	was, err := s.render.Shared(cur.store)
	if err != nil {
		return nil
	}
	keep := map[string]bool{}
	if state == store.StateActive {
		now, err := s.render.Shared(next)
		if err != nil {
			return nil
		}
		for _, f := range now {
			keep[f.Path] = true
		}
	}
	var out []string
	for _, f := range was {
		if !keep[f.Path] {
			out = append(out, f.Path)
		}
	}
	return out
}

// commit sends one change to the writer (or, for a dry run, only diffs it). The
// purged state removes the folder. shards is the fleet's count files were rendered
// and base read at; unshared are the shared files the change may leave unused.
func (s *Service) commit(ctx context.Context, m store.Meta, st store.Store, state store.State, action store.Action, shards int, base string, old, files []store.File, unshared []string) (store.Outcome, error) {
	dir := store.DirIn(st.Cluster, st.Name, shards)
	out := store.Outcome{RequestID: m.RequestID, Store: st.Name, Action: action, Phase: state.Phase()}
	if m.DryRun {
		out.DryRun = true
		out.State = store.RequestDryRun
		out.Changes = diffFiles(old, files)
		out.Review = s.wouldReview(st, action)
		return out, nil
	}
	c := store.Change{Store: st.Name, Cluster: st.Cluster, Action: action, Actor: m.Actor, OnBehalfOf: m.OnBehalfOf,
		Tenant: st.Tenant, RequestID: m.RequestID, Continues: m.Continues, Dir: dir, Files: files,
		Remove: state == store.StatePurged, Base: base, Plan: string(st.Plan), Engine: string(st.Engine), Unshared: unshared}
	if action == store.ActionCreate {
		c.StoresPerTenant = m.StoresPerTenant
	}
	if state == store.StateActive {
		// A live store references its engine × version's chart source: committed
		// with it, so the source exists in Git whenever a store uses it.
		shared, err := s.render.Shared(st)
		if err != nil {
			return store.Outcome{}, err
		}
		c.Shared = shared
	}
	// The deadline is the server's: a client that hangs up does not cut the write
	// short, and one that waits never waits longer.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.writeTO)
	commit, err := s.repo.Submit(wctx, c)
	cancel()
	if p, ok := store.AsProposed(err); ok {
		return proposed(out, p), nil
	}
	if errors.Is(err, store.ErrOutcomeUnknown) {
		// Accepted, outcome not known yet: the repository decides it and
		// GET /api/v1/requests/{id} tells.
		s.log.Warn("change pending: the write deadline passed during its push", "request_id", m.RequestID, "store", st.Name, "action", action)
		out.State = store.RequestPending
		out.Reason = "the write deadline passed while the change was being pushed; whether it landed is being decided: GET the request to learn the outcome"
		return out, nil
	}
	if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		// Someone else changed the fleet repository: learn the store's current state
		// so the next request sees it.
		s.refresh(ctx, st.Name, st.Cluster, dir)
	}
	switch {
	case errors.Is(err, store.ErrExists):
		return store.Outcome{}, store.Errorf(store.ECONFLICT, "store %q already exists in the fleet repository", st.Name)
	case errors.Is(err, store.ErrConflict):
		return store.Outcome{}, store.Errorf(store.ECONFLICT, "store %q was changed by someone else meanwhile; read it again and retry", st.Name)
	case errors.Is(err, store.ErrNotFound):
		return store.Outcome{}, store.Errorf(store.ENOTFOUND, "store %q not found", st.Name)
	case errors.Is(err, store.ErrTooManyPurges):
		return store.Outcome{}, store.Errorf(store.ECONFLICT, "too many purges at once; retry shortly")
	case store.ErrorCode(err) == store.EINVALID:
		// The repository's own refusal in the domain's terms (the tenant's quota,
		// counted where the commit lands): the caller's answer as it is.
		return store.Outcome{}, err
	case err != nil:
		return store.Outcome{}, fmt.Errorf("committing %s of %s: %w", action, st.Name, err)
	}
	// The folder's tree is the index's to keep, not part of the answer.
	tree := commit.Tree
	commit.Tree = ""
	s.mu.Lock()
	if state == store.StatePurged {
		s.dropLocked(st.Name)
	} else {
		s.putLocked(st.Name, &indexed{store: st, state: state, commit: commit, loaded: true, dir: dir, tree: tree})
	}
	s.mu.Unlock()
	out.State = store.RequestCommitted
	out.Commit = &commit
	s.log.Info("change committed", "request_id", m.RequestID, "store", st.Name, "action", action, "commit", commit.SHA)
	return out, nil
}

// dropDerived removes the error on a default derived from another invalid field (the
// domain <name>.<base domain> of an invalid name): the client did not send it, and
// the name's own error already says what to fix.
func dropDerived(err error, in store.Store) error {
	var e *store.Error
	if in.Domain != "" || !errors.As(err, &e) {
		return err
	}
	nameBad := false
	for _, f := range e.Fields {
		if f.Field == "name" {
			nameBad = true
		}
	}
	if !nameBad {
		return err
	}
	out := &store.Error{Code: e.Code, Message: e.Message}
	for _, f := range e.Fields {
		if f.Field != "domain" {
			out.Fields = append(out.Fields, f)
		}
	}
	return out
}

// dirOf is the store's folder in the fleet repository at the head's shard count.
func (s *Service) dirOf(ctx context.Context, st store.Store) (string, error) {
	n, err := s.repo.Shards(ctx)
	if err != nil {
		return "", err
	}
	return store.DirIn(st.Cluster, st.Name, n), nil
}
