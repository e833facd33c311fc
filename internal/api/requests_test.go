package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// problemField returns the one field error of a problem as "field/rule".
func problemField(t *testing.T, p map[string]any) string {
	t.Helper()
	errs, _ := p["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("want exactly one field error: %v", p)
	}
	fe := errs[0].(map[string]any)
	return fe["field"].(string) + "/" + fe["rule"].(string)
}

// A body is read as the client wrote it or refused: a key given twice (encoding/json
// keeps the last) and a key whose case differs from the field (encoding/json matches
// it anyway) are both 400s naming the key, and nothing is committed.
func TestStrictJSONKeys(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("strict")), http.StatusAccepted)
	n := e.commits()
	const good = `"engine":"woocommerce","plan":"basic","settings":{"title":"T","adminEmail":"a@example.com"}`
	cases := []struct {
		name, method, path, body, want string
	}{
		{"duplicate top-level key", "POST", "/api/v1/stores", `{"name":"dup-a","name":"dup-b",` + good + `}`, "name/duplicateKey"},
		{"duplicate nested key", "POST", "/api/v1/stores",
			`{"name":"dup-c","engine":"woocommerce","plan":"basic","settings":{"title":"A","adminEmail":"a@example.com","title":"B"}}`,
			"settings.title/duplicateKey"},
		{"duplicate with other spelling", "POST", "/api/v1/stores", `{"name":"dup-d","\u006eame":"dup-e",` + good + `}`, "name/duplicateKey"},
		{"capitalised field", "POST", "/api/v1/stores", `{"Name":"case-a",` + good + `}`, "Name/unknown"},
		{"capitalised nested field", "POST", "/api/v1/stores",
			`{"name":"case-b","engine":"woocommerce","plan":"basic","settings":{"Title":"T","adminEmail":"a@example.com"}}`,
			"settings.Title/unknown"},
		{"both spellings", "POST", "/api/v1/stores", `{"name":"case-c","NAME":"case-d",` + good + `}`, "NAME/unknown"},
		{"patch duplicate", "PATCH", "/api/v1/stores/strict", `{"plan":"standard","plan":"premium"}`, "plan/duplicateKey"},
		{"patch nested duplicate", "PATCH", "/api/v1/stores/strict", `{"settings":{"title":"A","title":"B"}}`, "settings.title/duplicateKey"},
		{"patch capitalised", "PATCH", "/api/v1/stores/strict", `{"Plan":"premium"}`, "Plan/unknown"},
		{"patch capitalised nested", "PATCH", "/api/v1/stores/strict", `{"settings":{"Title":"x"}}`, "settings.Title/unknown"},
		{"patch wrong type", "PATCH", "/api/v1/stores/strict", `{"settings":{"title":7}}`, "settings.title/type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			r := e.do(c.method, c.path, c.body, "Idempotency-Key", "strict-"+strings.ReplaceAll(c.name, " ", "-"))
			p := e.expect(r, http.StatusBadRequest)
			if got := problemField(t, p); got != c.want {
				t.Fatalf("refused naming %s, want %s: %v", got, c.want, p)
			}
			if p["type"] != "urn:storefleet:problem:malformed-body" {
				t.Fatalf("type %v", p["type"])
			}
		})
	}
	e.t = t
	if e.commits() != n {
		t.Fatal("a refused body made a commit")
	}
	got := e.expect(e.do("GET", "/api/v1/stores/strict", nil), http.StatusOK)
	if got["plan"] != "basic" || got["settings"].(map[string]any)["title"] != "Shop strict" {
		t.Fatalf("a refused patch changed the store: %v", got)
	}
}
