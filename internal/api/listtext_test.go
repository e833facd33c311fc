package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// TestListTextAndTenant: ?q= finds stores by a part of the name, domain or title
// across the whole list (the page holds matches only, the next page the rest), and
// ?tenant= selects one tenant; bad values are problems naming the parameter and rule.
func TestListTextAndTenant(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", with(shop("bakery"), "settings.title", "Fresh Bread")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", shop("books")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", shop("bread-co")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", with(shop("garden"), "domain", "seeds.example.com")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", shop("tools")), http.StatusAccepted)

	names := func(q string) string {
		t.Helper()
		var got []string
		cont := ""
		for {
			path := "/api/v1/stores?limit=1&" + q
			if cont != "" {
				path += "&continue=" + url.QueryEscape(cont)
			}
			page := e.expect(e.do("GET", path, nil), http.StatusOK)
			for _, it := range page["items"].([]any) {
				got = append(got, it.(map[string]any)["name"].(string))
			}
			c, _ := page["continue"].(string)
			if c == "" {
				return strings.Join(got, " ")
			}
			cont = c
		}
	}
	for q, want := range map[string]string{
		"q=bread":                       "bakery bread-co",
		"q=BREAD":                       "bakery bread-co",
		"q=seeds.example":               "garden",
		"q=oo":                          "books tools",
		"q=nothing-like-it":             "",
		"tenant=" + store.DefaultTenant: "bakery books bread-co garden tools",
		"tenant=someone-else":           "",
		"q=bread&tenant=someone-else":   "",
	} {
		if got := names(q); got != want {
			t.Errorf("?%s: %q, want %q", q, got, want)
		}
	}
	for q, rule := range map[string]string{
		"?tenant=Not_A_Label":            "dns1123Label",
		"?q=" + strings.Repeat("x", 257): "maxLength",
		"?q=a&q=b":                       "single",
	} {
		p := e.expect(e.do("GET", "/api/v1/stores"+q, nil), http.StatusBadRequest)
		errs, _ := p["errors"].([]any)
		field := strings.SplitN(strings.TrimPrefix(q, "?"), "=", 2)[0]
		if len(errs) != 1 || errs[0].(map[string]any)["field"] != field || errs[0].(map[string]any)["rule"] != rule {
			t.Errorf("%s: %v, want field %s rule %s", q, p, field, rule)
		}
	}
}
