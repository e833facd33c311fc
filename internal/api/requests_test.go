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

// The Idempotency-Key fingerprint is over what the request means, not its bytes: the
// same JSON with other whitespace and key order, or the same flags spelled otherwise,
// is a retry of the same request.
func TestIdempotencyKeyIsOverTheCanonicalRequest(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	first := `{"name":"canon","engine":"woocommerce","plan":"basic","settings":{"title":"Canon","adminEmail":"a@example.com"}}`
	again := "{\n  \"settings\": {\"adminEmail\": \"a@example.com\", \"title\": \"\\u0043anon\"},\n  \"plan\": \"basic\",\n  \"engine\": \"woocommerce\",\n  \"name\": \"canon\"\n}\n"
	a := e.expect(e.do("POST", "/api/v1/stores", first, "Idempotency-Key", "canon-1"), http.StatusAccepted)
	b := e.expect(e.do("POST", "/api/v1/stores?dryRun=false", again, "Idempotency-Key", "canon-1"), http.StatusAccepted)
	if a["commit"].(map[string]any)["sha"] != b["commit"].(map[string]any)["sha"] {
		t.Fatalf("the retry was answered differently:\n%v\n%v", a, b)
	}
	patch := e.expect(e.do("PATCH", "/api/v1/stores/canon", `{"plan":"standard","settings":{"title":"C2"}}`, "Idempotency-Key", "canon-2"), http.StatusAccepted)
	patch2 := e.expect(e.do("PATCH", "/api/v1/stores/canon", `{ "settings" : { "title" : "C2" } , "plan" : "standard" }`, "Idempotency-Key", "canon-2"), http.StatusAccepted)
	if patch["commit"].(map[string]any)["sha"] != patch2["commit"].(map[string]any)["sha"] {
		t.Fatalf("the patch retry was answered differently:\n%v\n%v", patch, patch2)
	}
	del := e.expect(e.do("DELETE", "/api/v1/stores/canon?purge=false", nil, "Idempotency-Key", "canon-3"), http.StatusAccepted)
	del2 := e.expect(e.do("DELETE", "/api/v1/stores/canon", nil, "Idempotency-Key", "canon-3"), http.StatusAccepted)
	if del["commit"].(map[string]any)["sha"] != del2["commit"].(map[string]any)["sha"] {
		t.Fatalf("the delete retry was answered differently:\n%v\n%v", del, del2)
	}
	if e.commits() != n+3 {
		t.Fatalf("three requests and their retries made %d commits", e.commits()-n)
	}
	// Another request under a used key is still refused.
	p := e.expect(e.do("PATCH", "/api/v1/stores/canon", `{"plan":"premium"}`, "Idempotency-Key", "canon-2"), http.StatusUnprocessableEntity)
	if got := problemField(t, p); got != "Idempotency-Key/reused" {
		t.Fatalf("%s: %v", got, p)
	}
}

// A request refused for its input does not use up its Idempotency-Key: the client
// fixes the input and retries under the same key.
func TestIdempotencyKeyNotBoundByRefusedInput(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	bad := with(shop("bound"), "settings.currency", "euro")
	p := e.expect(e.do("POST", "/api/v1/stores", bad, "Idempotency-Key", "fix-1"), http.StatusUnprocessableEntity)
	if got := problemField(t, p); got != "settings.currency/iso4217" {
		t.Fatalf("%s: %v", got, p)
	}
	e.expect(e.do("GET", "/api/v1/requests/fix-1", nil), http.StatusNotFound)
	ok := e.expect(e.do("POST", "/api/v1/stores", shop("bound"), "Idempotency-Key", "fix-1"), http.StatusAccepted)
	if ok["requestId"] != "fix-1" {
		t.Fatalf("%v", ok)
	}
	// An update refused for a field (a plan with less storage) likewise.
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"plan":"premium"}`), http.StatusAccepted)
	p = e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"plan":"basic"}`, "Idempotency-Key", "fix-2"), http.StatusUnprocessableEntity)
	if got := problemField(t, p); got != "plan/storageShrink" {
		t.Fatalf("%s: %v", got, p)
	}
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"settings":{"title":"Fixed"}}`, "Idempotency-Key", "fix-2"), http.StatusAccepted)
	// A body that does not decode never reached the service either.
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"settings":{"colour":"red"}}`, "Idempotency-Key", "fix-3"), http.StatusBadRequest)
	e.expect(e.do("PATCH", "/api/v1/stores/bound", `{"settings":{"title":"Again"}}`, "Idempotency-Key", "fix-3"), http.StatusAccepted)
	if e.commits() != n+4 {
		t.Fatalf("%d commits, want 4", e.commits()-n)
	}
	// A retry of the accepted request still gets its first outcome.
	again := e.expect(e.do("POST", "/api/v1/stores", shop("bound"), "Idempotency-Key", "fix-1"), http.StatusAccepted)
	if again["commit"].(map[string]any)["sha"] != ok["commit"].(map[string]any)["sha"] {
		t.Fatalf("retry after the fix answered differently:\n%v\n%v", ok, again)
	}
}
