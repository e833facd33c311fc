package fleet

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/storefleet/storefleet/internal/store"
)

// Get returns one store with the commit that last changed it.
func (s *Service) Get(ctx context.Context, name string) (store.View, error) {
	open := s.openProposals()
	cur, err := s.load(ctx, name)
	if store.ErrorCode(err) == store.ENOTFOUND {
		if v, ok := s.proposedCreate(open[name]); ok {
			return v, nil
		}
	}
	if err != nil {
		return store.View{}, err
	}
	v := store.View{Store: cur.store, State: cur.state, Review: reviewOf(open, name)}
	c, err := s.lastCommit(ctx, name, cur)
	if err != nil {
		return store.View{}, err
	}
	if c.SHA != "" {
		v.Commit = &c
	}
	return v, nil
}

// List returns up to limit stores after the continue token, sorted by name, and the
// token for the next page ("" on the last page). Commits are not filled in.
func (s *Service) List(ctx context.Context, f store.Filter, limit int, cont string) ([]store.View, string, error) {
	after, text := "", strings.ToLower(f.Text)
	if cont != "" {
		b, err := base64.RawURLEncoding.DecodeString(cont)
		if err != nil || !strings.HasPrefix(string(b), "n:") {
			return nil, "", &store.Error{Code: store.EINVALID, Message: "invalid continue token",
				Fields: []store.FieldError{{Field: "continue", Rule: "token", Message: "not a token this API returned"}}}
		}
		after = string(b[2:])
	}
	open := s.openProposals()
	s.mu.Lock()
	names := make([]string, 0, len(s.index))
	for n, e := range s.index {
		if n > after && (f.Cluster == "" || e.store.Cluster == f.Cluster) {
			names = append(names, n)
		}
	}
	// Proposed creates are listed among the fleet's stores, in name order.
	for n := range open {
		if _, ok := s.index[n]; !ok && n > after {
			names = append(names, n)
		}
	}
	s.mu.Unlock()
	sort.Strings(names)
	var all []store.View
	next := ""
	for _, n := range names {
		// Walk in name order, reading specs only as far as the page needs.
		e, err := s.load(ctx, n)
		if store.ErrorCode(err) == store.ENOTFOUND {
			pv, ok := s.proposedCreate(open[n])
			if !ok || f.Cluster != "" && pv.Store.Cluster != f.Cluster {
				continue
			}
			e, err = indexed{store: pv.Store, state: pv.State}, nil
		}
		if errors.Is(err, errUnreadable) || store.ErrorCode(err) == store.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		ph := e.state.Phase()
		if open[n] != nil {
			ph = store.PhaseAwaitingApproval
		}
		if f.Engine != "" && string(e.store.Engine) != f.Engine || f.Plan != "" && string(e.store.Plan) != f.Plan ||
			f.Phase != "" && string(ph) != f.Phase || !tenantMatches(f, e.store.Tenant) || !textMatches(text, e.store) {
			continue
		}
		if len(all) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte("n:" + all[limit-1].Store.Name))
			break
		}
		v := store.View{Store: e.store, State: e.state, Review: reviewOf(open, n)}
		if e.commit.SHA != "" {
			c := e.commit
			v.Commit = &c
		}
		all = append(all, v)
	}
	return all, next, nil
}

// History returns the store's audit log from Git, newest first: the first page,
// DefaultHistoryLimit commits.
func (s *Service) History(ctx context.Context, name string) ([]store.Entry, error) {
	h, err := s.HistoryPage(ctx, name, store.HistoryPage{})
	return h.Entries, err
}

// HistoryPage returns one page of the store's audit log from Git, newest first, and
// the cursor of the next. A purged store's history is still there (the folder's
// history outlives the folder) when the caller knows its cluster; for simplicity
// only stores in the index or in the default cluster are looked up.
func (s *Service) HistoryPage(ctx context.Context, name string, page store.HistoryPage) (store.HistoryResult, error) {
	st := store.Store{Name: name, Cluster: s.cluster}
	if cur, err := s.load(ctx, name); err == nil {
		st = cur.store
	}
	dir, err := s.dirOf(ctx, st)
	if err != nil {
		return store.HistoryResult{}, err
	}
	res, err := s.repo.History(ctx, dir, page)
	if errors.Is(err, store.ErrNotFound) && page.At != "" {
		return store.HistoryResult{}, store.Errorf(store.ENOTFOUND, "store %q has no change in commit %s", name, page.At)
	}
	if err != nil {
		return store.HistoryResult{}, err
	}
	h := res.Entries
	if len(h) == 0 && page.Before == "" && page.At == "" {
		return store.HistoryResult{}, store.Errorf(store.ENOTFOUND, "store %q has no history", name)
	}
	// Commits from before tenants name none. A store's tenant never changes, so
	// its tenant now is the one of every change it had; a store no longer in the
	// index is the tenant its newest entry names, or the default tenant's.
	tenant := st.Tenant
	if tenant == "" {
		tenant = entriesTenant(h)
		if tenant == "" && (page.Before != "" || page.At != "") {
			// An older page of a store that is gone: its newest entries say.
			if first, err := s.repo.History(ctx, dir, store.HistoryPage{}); err == nil {
				tenant = entriesTenant(first.Entries)
			}
		}
		if tenant == "" {
			tenant = s.tenant
		}
	}
	for i := range h {
		if h[i].Tenant == "" {
			h[i].Tenant = tenant
		}
	}
	return res, nil
}

// entriesTenant is the tenant the newest entry naming one gives; "" when none does.
func entriesTenant(h []store.Entry) string {
	for _, e := range h {
		if e.Tenant != "" {
			return e.Tenant
		}
	}
	return ""
}

// textMatches reports whether the lower-cased text is part of the store's name,
// domain or title (all of them when empty).
func textMatches(text string, s store.Store) bool {
	return text == "" || strings.Contains(s.Name, text) || strings.Contains(strings.ToLower(s.Domain), text) ||
		strings.Contains(strings.ToLower(s.Settings.Title), text)
}

// tenantMatches reports whether a store of tenant t passes f's tenant selection:
// Tenant names one tenant, Tenants (when not nil) the ones the caller may see, all
// of them if it holds AllTenants.
func tenantMatches(f store.Filter, t string) bool {
	if f.Tenant != "" && t != f.Tenant {
		return false
	}
	return f.Tenants == nil || slices.Contains(f.Tenants, store.AllTenants) || slices.Contains(f.Tenants, t)
}

// openProposals are the changes under review by store, when the repository sends
// changes to review (nil otherwise).
func (s *Service) openProposals() map[string]*store.Proposal {
	pl, ok := s.repo.(store.ProposalLister)
	if !ok {
		return nil
	}
	ps := pl.OpenProposals()
	out := make(map[string]*store.Proposal, len(ps))
	for i := range ps {
		out[ps[i].Store] = &ps[i]
	}
	return out
}

func reviewOf(open map[string]*store.Proposal, name string) *store.Review {
	if p := open[name]; p != nil {
		r := p.Review
		return &r
	}
	return nil
}

// proposedCreate is a store whose create waits for a reviewer: its spec is the
// proposed folder's, its tenant the one it was asked for, so the access rules treat
// it like any other store of that tenant.
func (s *Service) proposedCreate(p *store.Proposal) (store.View, bool) {
	if p == nil || p.Action != store.ActionCreate || len(p.Files) == 0 {
		return store.View{}, false
	}
	st, state, err := s.render.Parse(p.Files)
	if err != nil {
		s.log.Warn("proposed store not readable", "store", p.Store, "pr", p.Review.URL, "err", err)
		return store.View{}, false
	}
	r := p.Review
	return store.View{Store: s.owned(st), State: state, Review: &r}, true
}
