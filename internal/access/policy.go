package access

import (
	"slices"

	"github.com/storefleet/storefleet/internal/store"
)

// Policy maps identities to principals by the configuration's rules.
type Policy struct {
	rules []Rule
}

// NewPolicy returns the policy of a validated configuration.
func NewPolicy(c *Config) *Policy {
	return &Policy{rules: slices.Clone(c.Rules)}
}

// Principal returns what id may do: the grants its credential carries (an API
// token's tenant and role) and those of every rule it matches, the strongest role
// per tenant winning. Rules only ever add: an identity that matches none and carries
// no grants of its own is authenticated but may do nothing (it sees no store, and a
// create is forbidden).
func (p *Policy) Principal(id store.Identity) store.Principal {
	pr := store.Principal{Subject: id.Subject, Method: id.Method, Grants: map[string]store.Role{}}
	grant := func(tenant string, r store.Role) {
		if have, ok := pr.Grants[tenant]; !ok || r.Allows(have) {
			pr.Grants[tenant] = r
		}
	}
	for t, r := range id.Grants {
		if slices.Contains(store.Roles, r) {
			grant(t, r)
		}
	}
	for _, r := range p.rules {
		if !matches(r, id) {
			continue
		}
		for _, t := range r.Tenants {
			grant(t, r.Role)
		}
		pr.ActAs = pr.ActAs || r.ActAs
	}
	return pr
}

func matches(r Rule, id store.Identity) bool {
	if r.Method != "" && r.Method != id.Method {
		return false
	}
	if slices.Contains(r.Subjects, id.Subject) {
		return true
	}
	for _, g := range id.Groups {
		if slices.Contains(r.Groups, g) {
			return true
		}
	}
	return false
}
