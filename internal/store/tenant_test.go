package store

import (
	"strings"
	"testing"
)

func TestValidateTenant(t *testing.T) {
	for _, tc := range []struct {
		tenant, rule string
	}{
		{"", ""}, // no tenant: a store from before tenants; the lifecycle fills the default in
		{"acme", ""},
		{"a", ""},
		{"team-7", ""},
		{strings.Repeat("a", 63), ""},
		{strings.Repeat("a", 64), "maxLength"},
		{"Acme", "dns1123Label"},
		{"-acme", "dns1123Label"},
		{"acme-", "dns1123Label"},
		{"ac_me", "dns1123Label"},
		{"ac.me", "dns1123Label"},
		{"acme\nActor: root", "dns1123Label"},
		{"*", "dns1123Label"}, // AllTenants is a grant, never a store's tenant
		{"ünï", "dns1123Label"},
	} {
		s := valid(WooCommerce)
		s.Tenant = tc.tenant
		err := s.Validate()
		fes := FieldErrors(err)
		if tc.rule == "" {
			if err != nil {
				t.Errorf("tenant %q refused: %v", tc.tenant, err)
			}
			continue
		}
		if ErrorCode(err) != EINVALID || len(fes) != 1 || fes[0].Field != "tenant" || fes[0].Rule != tc.rule || fes[0].Message == "" {
			t.Errorf("tenant %q: %v %+v, want field tenant rule %s", tc.tenant, err, fes, tc.rule)
		}
	}
	if rule, _ := ValidateTenant(""); rule != "required" {
		t.Errorf("ValidateTenant(\"\") rule %q, want required", rule)
	}
}
