package fleet

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// A store's domain is known only once its folder is read, and at start-up only the
// folder names are (index.go: Reload, then a background warm-up reads the specs). So
// the index keeps, beside the entries, which active store holds each domain and how
// many entries are still unread; a domain check waits until none is, then answers
// from the map, never reading the fleet per request. Only active stores hold a
// domain: a deleted store's Ingress is gone with its release, and its files no
// longer say its domain (render.Parse), so after a restart nothing else could know.

// domainWait bounds how long a create or a domain change waits for the warm-up
// (about 40 s at 10,000 stores, docs/benchmarks.md) before it is answered 503: long
// enough that a client hardly sees it after a restart, short of the route's write
// deadline. A variable for tests only.
var domainWait = 20 * time.Second

// resetLocked replaces the whole index with entries read from folder names only.
// Callers hold s.mu.
func (s *Service) resetLocked(idx map[string]*indexed) {
	s.index = idx
	s.domains = map[string][]string{}
	s.unread = map[string]bool{}
	s.tenants = map[string]int{}
	for _, e := range idx {
		s.countLocked(e, +1)
	}
}

// putLocked makes e the entry of name. Callers hold s.mu.
func (s *Service) putLocked(name string, e *indexed) {
	if old, ok := s.index[name]; ok {
		s.countLocked(old, -1)
	}
	s.index[name] = e
	s.countLocked(e, +1)
}

// dropLocked removes name's entry. Callers hold s.mu.
func (s *Service) dropLocked(name string) {
	if old, ok := s.index[name]; ok {
		s.countLocked(old, -1)
		delete(s.index, name)
	}
}

// readLocked records what reading e's folder found, if e is still name's entry (a
// commit may have replaced it meanwhile; then the newer entry stands). Callers hold
// s.mu.
func (s *Service) readLocked(name string, e *indexed, st store.Store, state store.State) {
	mine := s.index[name] == e
	if mine {
		s.countLocked(e, -1)
	}
	e.store, e.state, e.loaded = st, state, true
	if mine {
		s.countLocked(e, +1)
	}
}

// unreadableLocked records that e's folder does not parse. Callers hold s.mu.
func (s *Service) unreadableLocked(name string, e *indexed) {
	if s.index[name] != e || e.unreadable {
		return
	}
	s.countLocked(e, -1)
	e.unreadable = true
	s.countLocked(e, +1)
}

// countLocked adds (+1) or removes (-1) what entry e contributes to domains,
// unread and tenants.
func (s *Service) countLocked(e *indexed, sign int) {
	if e.loaded && !e.unreadable {
		t := e.store.Tenant
		if s.tenants[t] += sign; s.tenants[t] == 0 {
			delete(s.tenants, t)
		}
	}
	switch {
	case !e.loaded && !e.unreadable:
		if sign > 0 {
			s.unread[e.store.Name] = true
		} else {
			delete(s.unread, e.store.Name)
		}
	case e.loaded && e.state == store.StateActive && e.store.Domain != "":
		d, name := e.store.Domain, e.store.Name
		if sign > 0 {
			if !slices.Contains(s.domains[d], name) {
				s.domains[d] = append(s.domains[d], name)
			}
			return
		}
		s.domains[d] = slices.DeleteFunc(s.domains[d], func(n string) bool { return n == name })
		if len(s.domains[d]) == 0 {
			delete(s.domains, d)
		}
	}
}

// claimDomain checks that no store but name has domain or is taking it, and with
// reserve set keeps it for name until release is called: so two creates (or
// updates) racing for one domain cannot both pass the check before either
// committed. release is never nil.
func (s *Service) claimDomain(ctx context.Context, name, domain string, reserve bool) (release func(), err error) {
	nop := func() {}
	if err := s.waitDomainsKnown(ctx); err != nil {
		return nop, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	holder := ""
	for _, n := range s.domains[domain] {
		if n != name {
			holder = n
			break
		}
	}
	if c, ok := s.claims[domain]; ok && c != name && holder == "" {
		holder = c
	}
	if holder != "" {
		return nop, &store.Error{Code: store.EINVALID, Message: "invalid store", Fields: []store.FieldError{{
			Field: "domain", Rule: "unique", Message: "domain " + domain + " is taken by the store " + holder}}}
	}
	if !reserve {
		return nop, nil
	}
	if _, ok := s.claims[domain]; ok {
		// name's own earlier claim (an update and a create of one name cannot both be
		// in flight: creates of an existing name are refused, updates hold its lock).
		return nop, nil
	}
	s.claims[domain] = name
	return func() {
		s.mu.Lock()
		if s.claims[domain] == name {
			delete(s.claims, domain)
		}
		s.mu.Unlock()
	}, nil
}

// waitDomainsKnown returns once every index entry has been read, so that the
// domains map is complete: it waits for the warm-up (at most domainWait), then reads
// itself whatever a later resync added.
func (s *Service) waitDomainsKnown(ctx context.Context) error {
	timer := time.NewTimer(domainWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		left, total := len(s.unread), len(s.index)
		s.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-s.warmDone:
		default:
			select {
			case <-s.warmDone:
			case <-timer.C:
				return store.Errorf(store.EUNAVAILABLE, "the store index is still being read after a restart (%d of %d stores left); a domain can be checked only once every store's is known, retry shortly", left, total)
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		// The warm-up is over: what is unread came with a resync since (a shard's
		// stores) or failed to read for a passing reason; read those now.
		s.mu.Lock()
		names := make([]string, 0, len(s.unread))
		for n := range s.unread {
			names = append(names, n)
		}
		s.mu.Unlock()
		for _, n := range names {
			if _, err := s.load(ctx, n); err != nil && store.ErrorCode(err) != store.ENOTFOUND && !errors.Is(err, errUnreadable) {
				return err
			}
		}
	}
}
