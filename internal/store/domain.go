package store

import "strings"

// ValidateNewDomain checks the rules a domain must meet when a store takes it (on
// create, or when an update changes it) beyond Validate's syntax, with baseDomain the
// parent of default store domains ("" means DefaultBaseDomain):
//
//   - fqdn: at least two labels. A single-label host such as localhost or intranet
//     names no store: it is a machine, or a search-domain shortcut whose meaning
//     depends on where it is resolved.
//   - unique: not the default domain of another name (<other>.<baseDomain>), which
//     belongs to the store <other> whether it exists yet or not; else creating <other>
//     later with its default domain would collide. So directly under the base domain
//     a store may have only its own name (reserved names such as api included: they
//     are reserved for the platform's own hosts).
//
// That no existing store has the domain is the lifecycle's to check (it knows the
// fleet). A store that took its domain before these rules keeps it: Validate, which
// every update runs, does not apply them. It returns an *Error with code EINVALID or
// nil.
func ValidateNewDomain(name, domain, baseDomain string) error {
	if baseDomain == "" {
		baseDomain = DefaultBaseDomain
	}
	var fe fieldErrors
	if !strings.Contains(domain, ".") {
		fe.add("domain", "fqdn", "domain must be a fully qualified name such as shop.example.com, not a single label like %q", domain)
	} else if owner, ok := DefaultDomainOwner(domain, baseDomain); ok && owner != name {
		fe.add("domain", "unique", "domain %s is the default domain of the name %s (directly under %s a store may have only its own name); choose another", domain, owner, baseDomain)
	}
	return fe.err("invalid store")
}

// DefaultDomainOwner reports the store name whose default domain domain is
// (<name>.<baseDomain>), if it is one.
func DefaultDomainOwner(domain, baseDomain string) (string, bool) {
	if baseDomain == "" {
		baseDomain = DefaultBaseDomain
	}
	label, ok := strings.CutSuffix(domain, "."+baseDomain)
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", false
	}
	return label, true
}
