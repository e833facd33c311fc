package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		if m, ok := v.(map[string]any); ok {
			c := map[string]any{}
			for k2, v2 := range m {
				c[k2] = v2
			}
			v = c
		}
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if s, ok := strings.CutPrefix(k, "settings."); ok {
			out["settings"].(map[string]any)[s] = kv[i+1]
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// Bad inputs get the documented 4xx naming the field and the rule, and the fleet
// repository does not change.
func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("taken")), http.StatusAccepted)
	n := e.commits()
	good := shop("ok-name")
	type fr struct{ field, rule string }
	cases := []struct {
		name   string
		body   any
		ctype  string
		status int
		want   []fr
	}{
		{"empty name", with(good, "name", ""), "", 422, []fr{{"name", "required"}}},
		{"upper case name", with(good, "name", "Shop"), "", 422, []fr{{"name", "dns1123Label"}}},
		{"one letter", with(good, "name", "a"), "", 422, []fr{{"name", "minLength"}}},
		{"41 letters", with(good, "name", strings.Repeat("a", 41)), "", 422, []fr{{"name", "maxLength"}}},
		{"dot dot slash", with(good, "name", "../etc"), "", 422, []fr{{"name", "dns1123Label"}}},
		{"slash", with(good, "name", "a/b"), "", 422, []fr{{"name", "dns1123Label"}}},
		{"unicode name", with(good, "name", "shöp"), "", 422, []fr{{"name", "dns1123Label"}}},
		{"reserved default", with(good, "name", "default"), "", 422, []fr{{"name", "reserved"}}},
		{"reserved kube-", with(good, "name", "kube-public"), "", 422, []fr{{"name", "reserved"}}},
		{"reserved store-", with(good, "name", "store-x"), "", 422, []fr{{"name", "reserved"}}},
		{"reserved api", with(good, "name", "api"), "", 422, []fr{{"name", "reserved"}}},
		{"reserved flux-system", with(good, "name", "flux-system"), "", 422, []fr{{"name", "reserved"}}},
		{"unknown engine", with(good, "engine", "magento"), "", 422, []fr{{"engine", "oneOf"}}},
		{"unknown plan", with(good, "plan", "gold"), "", 422, []fr{{"plan", "oneOf"}}},
		{"every error at once", with(good, "name", "XY", "engine", "x", "plan", "y"), "", 422,
			[]fr{{"name", "dns1123Label"}, {"engine", "oneOf"}, {"plan", "oneOf"}}},
		{"cluster path", with(good, "cluster", "../x"), "", 422, []fr{{"cluster", "dns1123Label"}}},
		{"domain path", with(good, "domain", "../../etc"), "", 422, []fr{{"domain", "dns1123Subdomain"}}},
		{"version yaml", with(good, "version", "1.0.0\nkind: Secret"), "", 422, []fr{{"version", "semver"}}},
		{"bad email", with(good, "settings.adminEmail", "not-an-email"), "", 422, []fr{{"settings.adminEmail", "email"}}},
		{"bad currency", with(good, "settings.currency", "euro"), "", 422, []fr{{"settings.currency", "iso4217"}}},
		{"region for woocommerce", with(good, "settings.regionName", "EU"), "", 422, []fr{{"settings.regionName", "notForEngine"}}},
		{"name is a number", with(good, "name", 42), "", 400, []fr{{"name", "type"}}},
		{"settings is a string", with(good, "settings", "x"), "", 400, []fr{{"settings", "type"}}},
		{"title is an array", with(good, "settings.title", []string{"x"}), "", 400, []fr{{"settings.title", "type"}}},
		{"plan is null-ish object", with(good, "plan", map[string]any{}), "", 400, []fr{{"plan", "type"}}},
		{"unknown field", with(good, "replicas", 3), "", 400, []fr{{"replicas", "unknown"}}},
		{"unknown settings field", with(good, "settings.values", "x"), "", 400, []fr{{"settings.values", "unknown"}}},
		{"status is not input", with(good, "status", map[string]any{"phase": "ready"}), "", 400, []fr{{"status", "unknown"}}},
		{"malformed", `{"name":"x",`, "", 400, []fr{{"", "syntax"}}},
		{"two values", `{"name":"x"}{"name":"y"}`, "", 400, []fr{{"", "syntax"}}},
		{"empty body", ``, "", 400, []fr{{"", "syntax"}}},
		{"array body", `[1]`, "", 400, []fr{{"", "type"}}},
		{"invalid utf-8", "{\"name\":\"sh\xffop\"}", "", 400, []fr{{"", "utf8"}}},
		{"huge body", `{"name":"x","settings":{"title":"` + strings.Repeat("a", 200<<10) + `"}}`, "", 413, []fr{{"", "maxBytes"}}},
		{"form content type", "name=x", "application/x-www-form-urlencoded", 415, []fr{{"Content-Type", "mediaType"}}},
		{"yaml content type", "name: x", "application/yaml", 415, []fr{{"Content-Type", "mediaType"}}},
		{"existing name", shop("taken"), "", 409, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			hdr := []string{}
			if c.ctype != "" {
				hdr = []string{"Content-Type", c.ctype}
			}
			r := e.do("POST", "/api/v1/stores", c.body, hdr...)
			p := e.expect(r, c.status)
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if p["status"].(float64) != float64(c.status) || p["title"] == "" || p["requestId"] == "" {
				t.Fatalf("problem %v", p)
			}
			got := map[fr]bool{}
			errs, _ := p["errors"].([]any)
			for _, x := range errs {
				x := x.(map[string]any)
				got[fr{x["field"].(string), x["rule"].(string)}] = true
			}
			for _, w := range c.want {
				if !got[w] {
					t.Errorf("errors %v lack field %q rule %q", errs, w.field, w.rule)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("errors %v, want exactly %v", errs, c.want)
			}
			if e.commits() != n {
				t.Fatal("the fleet repository changed")
			}
		})
	}
	e.t = t
	// Bad query parameters and headers are named too.
	for _, q := range []string{"?dryRun=maybe", "?purge=true", "?force=1"} {
		p := e.expect(e.do("POST", "/api/v1/stores"+q, good), http.StatusBadRequest)
		if len(p["errors"].([]any)) != 1 {
			t.Fatalf("%s: %v", q, p)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?engine=magento", "?plan=gold", "?continue=!!", "?foo=bar"} {
		e.expect(e.do("GET", "/api/v1/stores"+q, nil), http.StatusBadRequest)
	}
	e.expect(e.do("PATCH", "/api/v1/stores/taken", `"a string"`), http.StatusBadRequest)
	e.expect(e.do("PATCH", "/api/v1/stores/taken", `{"settings":{"colour":"red"}}`), http.StatusBadRequest)
	e.expect(e.do("PATCH", "/api/v1/stores/taken", `{"plan":7}`), http.StatusBadRequest)
	e.expect(e.do("PATCH", "/api/v1/stores/nope", `{"plan":"standard"}`), http.StatusNotFound)
	e.expect(e.do("DELETE", "/api/v1/stores/nope", nil), http.StatusNotFound)
	e.expect(e.do("GET", "/api/v1/stores/..%2Fetc", nil), http.StatusNotFound)
	e.expect(e.do("GET", "/api/v1/requests/nope", nil), http.StatusNotFound)
	if e.commits() != n {
		t.Fatal("the fleet repository changed")
	}
}

// YAML-looking strings in every free-text settings field are either refused naming
// the field, or stored as plain strings: read back identical through the API and from
// the HelmRelease in Git, never as YAML structure.
func TestYAMLLookingSettings(t *testing.T) {
	e := newEnv(t)
	tricky := []string{
		"---\nkind: Secret", "key: value", "{a: b}", "[1, 2]", "*alias", "&anchor x", "!!binary aGk=",
		"yes", "null", "~", "0x10", "'quoted'", "\"dq\"", "|\n  block", "# comment", "${HOME}",
		"{{ .Values.secret }}", "a\u0000b", "Ünïcødé 🛒 店", "\u202eevil", " padded ", "1e3",
	}
	fields := []string{"title", "adminEmail", "currency", "country", "language"}
	stored, refused := 0, 0
	for fi, f := range fields {
		for ti, s := range tricky {
			name := fmt.Sprintf("y-%d-%d", fi, ti)
			r := e.do("POST", "/api/v1/stores", with(shop(name), "settings."+f, s))
			switch r.status {
			case http.StatusUnprocessableEntity:
				refused++
				p := r.json(t)
				if errs := p["errors"].([]any); errs[0].(map[string]any)["field"] != "settings."+f {
					t.Errorf("%s=%q refused naming %v", f, s, errs)
				}
				continue
			case http.StatusAccepted:
				stored++
			default:
				t.Fatalf("%s=%q: status %d %s", f, s, r.status, r.body)
			}
			got := e.expect(e.do("GET", "/api/v1/stores/"+name, nil), http.StatusOK)
			if v := got["settings"].(map[string]any)[f]; v != s {
				t.Errorf("%s=%q read back as %q", f, s, v)
			}
			hr, ok := e.file(storeDir(name) + "/helmrelease.yaml")
			if !ok {
				t.Fatalf("%s: no helmrelease.yaml", name)
			}
			var obj struct {
				Spec struct {
					Values struct {
						Store map[string]any `json:"store"`
					} `json:"values"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(hr), &obj); err != nil {
				t.Fatalf("%s=%q: HelmRelease does not parse: %v", f, s, err)
			}
			if v := obj.Spec.Values.Store[f]; v != s {
				t.Errorf("%s=%q is %#v in the HelmRelease", f, s, v)
			}
		}
	}
	if stored == 0 {
		t.Fatal("no tricky string was stored: the test proves nothing about escaping")
	}
	t.Logf("%d stored verbatim, %d refused with the field named", stored, refused)
	fsck(t, e)
}
