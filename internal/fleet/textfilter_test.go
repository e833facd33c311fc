package fleet_test

import (
	"context"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// TestListByText: the list's text filter matches a part of the name, the domain or
// the title, in any case, and pages the matches only (pages of 2 here), so a
// dashboard's filter works across pages.
func TestListByText(t *testing.T) {
	rm := newFleetRemote(t)
	r := openReplica(t, rm, nil)
	ctx := context.Background()
	for _, c := range []struct{ name, domain, title, tenant string }{
		{"bakery", "", "Fresh Bread", "a"},
		{"books", "reading.example.com", "", "a"},
		{"garden", "", "Seeds", "b"},
		{"bread-co", "", "", "b"},
		{"tools", "", "", "a"},
	} {
		s := shop(c.name, c.domain)
		s.Settings.Title = c.title
		s.Tenant = c.tenant
		if _, err := r.svc.Create(ctx, s, meta()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{Text: "bread"}, "bakery bread-co"},
		{store.Filter{Text: "BREAD"}, "bakery bread-co"},
		{store.Filter{Text: "reading.example"}, "books"},
		// The default domain is <name>.<base domain>: every store but the one with its own.
		{store.Filter{Text: store.DefaultBaseDomain}, "bakery bread-co garden tools"},
		{store.Filter{Text: "oo"}, "books tools"},
		{store.Filter{Text: "oo", Tenant: "b"}, ""},
		{store.Filter{Text: "e", Tenant: "b"}, "bread-co garden"},
		{store.Filter{Text: "bread", Tenants: []string{"b"}}, "bread-co"},
		{store.Filter{Text: "nothing-like-it"}, ""},
	} {
		if got := listNames(t, r.svc, tc.f); got != tc.want {
			t.Errorf("List %+v = %q, want %q", tc.f, got, tc.want)
		}
	}
}
