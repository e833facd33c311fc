package store

import "testing"

// The rules for a domain a store takes: fully qualified, and directly under the
// base domain only the store's own name.
func TestValidateNewDomain(t *testing.T) {
	for _, c := range []struct {
		name, domain, base, rule string
	}{
		{"shop", "shop.stores.localhost", "", ""},
		{"shop", "shop.example.com", "", ""},
		{"shop", "www.shop.stores.localhost", "", ""}, // below another store's domain: a host of its own
		{"shop", "localhost", "", "fqdn"},
		{"shop", "intranet", "shops.acme.com", "fqdn"},
		{"shop", "other.stores.localhost", "", "unique"},
		{"shop", "api.stores.localhost", "", "unique"}, // reserved names' hosts are the platform's
		{"shop", "other.shops.acme.com", "shops.acme.com", "unique"},
		{"shop", "other.stores.localhost", "shops.acme.com", ""}, // not under this base domain
	} {
		err := ValidateNewDomain(c.name, c.domain, c.base)
		got := ""
		if fe := FieldErrors(err); len(fe) == 1 && fe[0].Field == "domain" {
			got = fe[0].Rule
		} else if err != nil {
			t.Errorf("%s %s: %v", c.name, c.domain, err)
			continue
		}
		if got != c.rule || (err != nil && ErrorCode(err) != EINVALID) {
			t.Errorf("%s taking %s under %q: rule %q (%v), want %q", c.name, c.domain, c.base, got, err, c.rule)
		}
	}
}
