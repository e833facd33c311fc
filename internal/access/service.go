package access

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Options configure the enforcing decorator.
type Options struct {
	// Limits: StoresPerTenant and RemovalsPerHour are enforced here (zero: no limit);
	// the rates are the HTTP layer's.
	Limits Limits
	// DefaultTenant is the tenant of a store whose files name none; empty means
	// store.DefaultTenant.
	DefaultTenant string
	// Now is the clock of the mass-deletion guard's window; nil means time.Now.
	Now func() time.Time
}

// rememberedRequests bounds the table of requests this decorator saw created, by
// which it attributes a failed create (no folder, no history) to its tenant.
const rememberedRequests = 10_000

// NewService returns next with the access policy enforced for the principal each
// call's context carries (store.PrincipalFrom). Without a principal (authentication
// off) nothing is restricted except the mass-deletion guard, which holds whoever
// asks. counter answers the quota and the guard; it must not be nil.
func NewService(next store.Service, counter store.Counter, o Options) store.Service {
	if counter == nil {
		panic("access.NewService: a store.Counter is needed for the quota and the mass-deletion guard")
	}
	if o.DefaultTenant == "" {
		o.DefaultTenant = store.DefaultTenant
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &service{next: next, counter: counter, o: o, inflight: map[string]int{}, created: map[string]string{}}
}

type service struct {
	next    store.Service
	counter store.Counter
	o       Options

	mu sync.Mutex
	// inflight counts, per tenant, the creates that hold a place in its quota but
	// are not committed yet (reserve).
	inflight map[string]int
	created  map[string]string // request id → tenant of the create
	order    []string
}

// The messages of a store or request hidden from the principal are the fleet's own
// for one that does not exist, so that the answer tells nothing either way.
func notFound(name string) error { return store.Errorf(store.ENOTFOUND, "store %q not found", name) }

func noHistory(name string) error {
	return store.Errorf(store.ENOTFOUND, "store %q has no history", name)
}

func requestNotFound(id string) error {
	return store.Errorf(store.ENOTFOUND, "request %q not found: neither this service's request log nor the fleet repository's history (its Request-Id trailers) knows it", id)
}

func forbidden(p *store.Principal, tenant string, need store.Role, what string) error {
	have := p.RoleIn(tenant)
	if have == "" {
		have = "no role"
	}
	return store.Errorf(store.EFORBIDDEN, "%s needs the %s role in tenant %q; you have %s there", what, need, tenant, have)
}

func (s *service) tenantOf(st store.Store) string {
	if st.Tenant == "" {
		return s.o.DefaultTenant
	}
	return st.Tenant
}

// actor makes the audit identity the authenticated one: a client's claim is
// recorded only as the actor a principal allowed to act for others acts for.
func actor(p *store.Principal, m store.Meta) (store.Meta, error) {
	if p == nil {
		return m, nil
	}
	m.Actor = p.Subject
	if m.OnBehalfOf != "" && !p.ActAs {
		return m, &store.Error{Code: store.EFORBIDDEN, Message: "you may not act for others",
			Fields: []store.FieldError{{Field: "X-Actor", Rule: "actAs",
				Message: "X-Actor is honoured only for principals allowed to act for others (actAs in the access config); leave it out"}}}
	}
	return m, nil
}

func (s *service) Create(ctx context.Context, st store.Store, m store.Meta) (store.Outcome, error) {
	p := store.PrincipalFrom(ctx)
	m, err := actor(p, m)
	if err != nil {
		return store.Outcome{}, err
	}
	tenant, err := s.createTenant(p, st.Tenant)
	if err != nil {
		return store.Outcome{}, err
	}
	st.Tenant = tenant
	// A create names a tenant, not a store: refusing it says nothing about any
	// store, so it is forbidden rather than not found.
	if p != nil && !p.Can(tenant, store.RoleEditor) {
		return store.Outcome{}, forbidden(p, tenant, store.RoleEditor, "creating a store")
	}
	release, near, err := s.reserve(ctx, tenant, m.DryRun)
	if err != nil {
		return store.Outcome{}, err
	}
	// The check above counts only this replica's creates in flight; the writer
	// checks the limit again on the tree the commit lands on, which holds every
	// replica's, and that is what makes the quota exact. Only near the limit
	// (quotaCheckRoom): the writer's count costs every commit it is asked for.
	if near {
		m.StoresPerTenant = s.o.Limits.StoresPerTenant
	}
	out, err := s.next.Create(ctx, st, m)
	release()
	if !m.DryRun && m.RequestID != "" {
		s.remember(m.RequestID, tenant)
	}
	return out, err
}

// createTenant picks the tenant of a new store: the one named, else the only one
// the principal may create in, else the default tenant if it may create there.
func (s *service) createTenant(p *store.Principal, named string) (string, error) {
	if named != "" {
		if rule, msg := store.ValidateTenant(named); rule != "" {
			return "", &store.Error{Code: store.EINVALID, Message: "invalid store",
				Fields: []store.FieldError{{Field: "tenant", Rule: rule, Message: msg}}}
		}
		return named, nil
	}
	if p == nil {
		return s.o.DefaultTenant, nil
	}
	if len(p.Grants) == 0 {
		return "", store.Errorf(store.EFORBIDDEN, "you have no role in any tenant: the access policy grants %q nothing", p.Subject)
	}
	var mine []string
	for t, r := range p.Grants {
		if t != store.AllTenants && r.Allows(store.RoleEditor) {
			mine = append(mine, t)
		}
	}
	switch {
	case len(mine) == 1:
		return mine[0], nil
	case p.Can(s.o.DefaultTenant, store.RoleEditor):
		return s.o.DefaultTenant, nil
	case len(mine) == 0:
		return "", store.Errorf(store.EFORBIDDEN, "creating a store needs the editor role in a tenant; %q has none", p.Subject)
	}
	return "", &store.Error{Code: store.EINVALID, Message: "invalid store",
		Fields: []store.FieldError{{Field: "tenant", Rule: "required",
			Message: fmt.Sprintf("name the tenant of the store: you may create stores in %d tenants", len(mine))}}}
}

// reserve checks the tenant's quota and, for a real create, holds one of its
// places until the create has answered: the fleet counts a store only once it is
// committed, so creates in flight are counted here. Only the count is serialised,
// never the create itself, so concurrent creates in a tenant still share one
// commit (a lock around the create made them 12-15x slower). It is the early
// answer, exact within one replica; across replicas the creates in flight on the
// others are not counted here but by the writer (Meta.StoresPerTenant), which
// checks the limit on the tree each commit lands on.
//
// near says the tenant has fewer than quotaCheckRoom places left as this replica
// sees them, so the writer must count again where the commit lands.
func (s *service) reserve(ctx context.Context, tenant string, dryRun bool) (release func(), near bool, err error) {
	limit := s.o.Limits.StoresPerTenant
	if limit <= 0 {
		return func() {}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.counter.Stores(ctx, tenant)
	if err != nil {
		return nil, false, err
	}
	if n+s.inflight[tenant] >= limit {
		return nil, false, store.QuotaError(tenant, n+s.inflight[tenant], limit)
	}
	near = limit-(n+s.inflight[tenant]) <= quotaCheckRoom
	if dryRun {
		return func() {}, near, nil
	}
	s.inflight[tenant]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.inflight[tenant]--; s.inflight[tenant] == 0 {
			delete(s.inflight, tenant)
		}
	}, near, nil
}

// quotaCheckRoom is how close to its limit a tenant must be, as this replica counts
// it, before a create asks the writer to count the tenant's stores again on the tree
// its commit lands on. Farther away no replica can take the tenant past its limit
// unless more than this many of its creates are in flight on the others or
// committed but not yet fetched here at once; and the writer's count costs each
// commit it runs for (creates/s 0.77-0.94x at 100 clients), which a tenant far from
// its limit should not pay. The first count after a start no longer pauses the
// writer for the whole fleet's folders (~1 s at 10,000 stores) unless it comes
// before gitrepo's background warm-up has ended. A var so that tests can check near and far alike.
var quotaCheckRoom = 1000

func (s *service) remember(id, tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.created[id]; ok {
		return // the first create under an id owns it; a reuse is answered with its outcome
	}
	s.order = append(s.order, id)
	s.created[id] = tenant
	for len(s.order) > rememberedRequests {
		delete(s.created, s.order[0])
		s.order = s.order[1:]
	}
}

// visible returns the tenant of the named store if the principal may see it, and
// the not-found error otherwise.
func (s *service) visible(ctx context.Context, p *store.Principal, name string) (string, error) {
	v, err := s.next.Get(ctx, name)
	if err != nil {
		return "", err
	}
	t := s.tenantOf(v.Store)
	if !p.Sees(t) {
		return "", notFound(name)
	}
	return t, nil
}

func (s *service) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m store.Meta) (store.Outcome, error) {
	p := store.PrincipalFrom(ctx)
	m, err := actor(p, m)
	if err != nil {
		return store.Outcome{}, err
	}
	if p != nil {
		t, err := s.visible(ctx, p, name)
		if err != nil {
			return store.Outcome{}, err
		}
		if !p.Can(t, store.RoleEditor) {
			return store.Outcome{}, forbidden(p, t, store.RoleEditor, "changing a store")
		}
	}
	return s.next.Update(ctx, name, func(cur store.Store) (store.Store, error) {
		// Checked again on the store as the change sees it, under the fleet's lock.
		t := s.tenantOf(cur)
		if p != nil && !p.Sees(t) {
			return cur, notFound(name)
		}
		if p != nil && !p.Can(t, store.RoleEditor) {
			return cur, forbidden(p, t, store.RoleEditor, "changing a store")
		}
		next, err := change(cur)
		if err != nil {
			return next, err
		}
		if s.tenantOf(next) != t {
			return next, &store.Error{Code: store.EINVALID, Message: "invalid change",
				Fields: []store.FieldError{{Field: "tenant", Rule: "immutable", Message: "a store's tenant is set at create and cannot change"}}}
		}
		return next, nil
	}, m)
}

func (s *service) Delete(ctx context.Context, name string, purge bool, m store.Meta) (store.Outcome, error) {
	p := store.PrincipalFrom(ctx)
	m, err := actor(p, m)
	if err != nil {
		return store.Outcome{}, err
	}
	tenant := ""
	if p != nil {
		if tenant, err = s.visible(ctx, p, name); err != nil {
			return store.Outcome{}, err
		}
		need, what := store.RoleEditor, "deleting a store"
		if purge {
			need, what = store.RoleAdmin, "purging a store's data"
		}
		if !p.Can(tenant, need) {
			return store.Outcome{}, forbidden(p, tenant, need, what)
		}
	}
	if err := s.guard(ctx, p, tenant, m); err != nil {
		return store.Outcome{}, err
	}
	return s.next.Delete(ctx, name, purge, m)
}

// guard is the mass-deletion guard: past the hourly number of removals in the whole
// fleet, a delete or purge needs admin and an explicit force, whoever asks. A later
// step of a purge gitops-api commits itself is part of a removal already counted.
func (s *service) guard(ctx context.Context, p *store.Principal, tenant string, m store.Meta) error {
	limit := s.o.Limits.RemovalsPerHour
	if limit <= 0 || m.Continues {
		return nil
	}
	n, err := s.counter.Removals(ctx, s.o.Now().Add(-time.Hour))
	if err != nil {
		return err
	}
	if n < limit {
		return nil
	}
	admin := p == nil || p.Can(tenant, store.RoleAdmin)
	if admin && m.Force {
		return nil
	}
	return store.Errorf(store.EFORBIDDEN,
		"mass-deletion guard: %d stores were deleted or purged in the last hour and the limit (limits.removalsPerHour) is %d; "+
			"past it only an admin may remove more, and only by forcing it (?force=true)", n, limit)
}

func (s *service) Get(ctx context.Context, name string) (store.View, error) {
	p := store.PrincipalFrom(ctx)
	v, err := s.next.Get(ctx, name)
	if err != nil || p == nil {
		return v, err
	}
	if !p.Sees(s.tenantOf(v.Store)) {
		return store.View{}, notFound(name)
	}
	return v, nil
}

// tenants returns the tenants p sees, [AllTenants] when it sees every one.
func tenants(p *store.Principal) []string {
	if p.Sees(store.AllTenants) {
		return []string{store.AllTenants}
	}
	out := make([]string, 0, len(p.Grants))
	for t := range p.Grants {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (s *service) List(ctx context.Context, f store.Filter, limit int, cont string) ([]store.View, string, error) {
	p := store.PrincipalFrom(ctx)
	if p == nil {
		return s.next.List(ctx, f, limit, cont)
	}
	f.Tenants = tenants(p)
	// Nil Tenants would mean no restriction: a principal that sees nothing gets
	// nothing without asking.
	if len(f.Tenants) == 0 || f.Tenant != "" && !p.Sees(f.Tenant) {
		return []store.View{}, "", nil
	}
	views, next, err := s.next.List(ctx, f, limit, cont)
	if err != nil {
		return nil, "", err
	}
	// The fleet filters by Filter.Tenants; this is the second lock on the same door,
	// should a page ever carry a store the principal does not see.
	out := views[:0]
	for _, v := range views {
		if p.Sees(s.tenantOf(v.Store)) {
			out = append(out, v)
		}
	}
	return out, next, nil
}

func (s *service) History(ctx context.Context, name string) ([]store.Entry, error) {
	h, err := s.HistoryPage(ctx, name, store.HistoryPage{})
	return h.Entries, err
}

// HistoryPage holds every page to the tenant rules of the first: whether the principal
// sees the store is decided before the page is read, so a cursor (Before, At) tells
// nothing about a store hidden from it; its errors (an unknown cursor) are the fleet's
// only once the store is known to be visible.
func (s *service) HistoryPage(ctx context.Context, name string, page store.HistoryPage) (store.HistoryResult, error) {
	p := store.PrincipalFrom(ctx)
	if p == nil {
		return s.next.HistoryPage(ctx, name, page)
	}
	v, err := s.next.Get(ctx, name)
	switch {
	case err == nil:
		if !p.Sees(s.tenantOf(v.Store)) {
			return store.HistoryResult{}, noHistory(name)
		}
		return s.next.HistoryPage(ctx, name, page)
	case store.ErrorCode(err) != store.ENOTFOUND:
		return store.HistoryResult{}, err
	}
	// Gone from the head (purged): its history still names its tenant, as its
	// newest page has it.
	first, err := s.next.HistoryPage(ctx, name, store.HistoryPage{})
	if err != nil {
		return store.HistoryResult{}, err
	}
	if !p.Sees(s.entriesTenant(first.Entries)) {
		return store.HistoryResult{}, noHistory(name)
	}
	if page == (store.HistoryPage{}) {
		return first, nil
	}
	return s.next.HistoryPage(ctx, name, page)
}

// entriesTenant is the tenant the newest entry naming one gives, the default tenant
// when none does (the store predates tenants).
func (s *service) entriesTenant(h []store.Entry) string {
	for _, e := range h {
		if e.Tenant != "" {
			return e.Tenant
		}
	}
	return s.o.DefaultTenant
}

func (s *service) Request(ctx context.Context, id string) (store.Outcome, error) {
	p := store.PrincipalFrom(ctx)
	out, err := s.next.Request(ctx, id)
	if err != nil || p == nil {
		return out, err
	}
	t, known, err := s.requestTenant(ctx, id, out.Store)
	if err != nil {
		return store.Outcome{}, err
	}
	// A request whose store left no trace (a create that failed on another
	// replica) cannot be attributed: only a principal that sees every tenant sees it.
	if known && !p.Sees(t) || !known && !p.Sees(store.AllTenants) {
		return store.Outcome{}, requestNotFound(id)
	}
	return out, nil
}

// requestTenant attributes a request to the tenant of its store: as the fleet has
// it, else as its history names it, else as this decorator saw it created (a create
// that failed leaves no trace in Git). The fleet's answers come first because a
// client-chosen request id may have been used by another tenant too.
func (s *service) requestTenant(ctx context.Context, id, name string) (string, bool, error) {
	if name != "" {
		v, err := s.next.Get(ctx, name)
		if err == nil {
			return s.tenantOf(v.Store), true, nil
		}
		if store.ErrorCode(err) != store.ENOTFOUND {
			return "", false, err
		}
		h, err := s.next.History(ctx, name)
		if err == nil {
			return s.entriesTenant(h), true, nil
		}
		if store.ErrorCode(err) != store.ENOTFOUND {
			return "", false, err
		}
	}
	s.mu.Lock()
	t, ok := s.created[id]
	s.mu.Unlock()
	return t, ok, nil
}

func (s *service) Ready(ctx context.Context) error { return s.next.Ready(ctx) }
