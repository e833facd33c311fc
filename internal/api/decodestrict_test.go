package api

import (
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

func TestDecodeRefusesDuplicateAndMiscasedKeys(t *testing.T) {
	cases := []struct {
		name, body, field, rule string
	}{
		{"duplicate", `{"name":"a","name":"b"}`, "name", "duplicateKey"},
		{"duplicate escaped", `{"name":"a","\u006eame":"b"}`, "name", "duplicateKey"},
		{"duplicate nested", `{"settings":{"title":"a","title":"b"}}`, "settings.title", "duplicateKey"},
		{"unknown before its duplicate", `{"x":1,"x":2}`, "x", "unknown"},
		{"empty key", `{"":1,"":2}`, `""`, "unknown"},
		{"capitalised", `{"Name":"a"}`, "Name", "unknown"},
		{"upper case", `{"NAME":"a"}`, "NAME", "unknown"},
		{"capitalised nested", `{"settings":{"AdminEmail":"a@b.c"}}`, "settings.AdminEmail", "unknown"},
		{"first problem wins", `{"Name":"a","name":"b","name":"c"}`, "Name", "unknown"},
		{"duplicate inside an unknown object", `{"colour":{"a":1,"a":2}}`, "colour", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s store.Store
			fe := Decode([]byte(c.body), &s)
			if fe == nil {
				t.Fatalf("decoded %s as %+v", c.body, s)
			}
			if fe.Field != c.field || fe.Rule != c.rule || fe.Detail == "" {
				t.Fatalf("got %+v, want field %q rule %q", fe, c.field, c.rule)
			}
		})
	}
	// A hint names the field when only the case is wrong.
	var s store.Store
	if fe := Decode([]byte(`{"Name":"a"}`), &s); !strings.Contains(fe.Detail, `"name"`) {
		t.Fatalf("detail %q does not name the field", fe.Detail)
	}
	// Duplicates are refused whatever the target, also in a map and an array of objects.
	for _, body := range []string{`{"a":{"b":1,"b":1}}`, `[{"a":1},{"a":1,"a":1}]`} {
		var v any
		if fe := Decode([]byte(body), &v); fe == nil || fe.Rule != "duplicateKey" {
			t.Fatalf("%s: %+v", body, fe)
		}
	}
	var arr []map[string]int
	if fe := Decode([]byte(`[{"a":1},{"a":1,"a":2}]`), &arr); fe == nil || fe.Field != "[1].a" {
		t.Fatalf("array path: %+v", fe)
	}
}

// A body that is not valid JSON is a syntax error, whatever keys it has before the
// fault: the decoder's message is the useful one.
func TestDecodeSyntaxBeforeKeys(t *testing.T) {
	for _, body := range []string{`{"name":"a","name":`, `{"Name":"a"} {"name":"b"}`, `{"name":"a","name":"b"}]`} {
		var s store.Store
		if fe := Decode([]byte(body), &s); fe == nil || fe.Rule != "syntax" {
			t.Fatalf("%s: %+v", body, fe)
		}
	}
}

func TestDecodePatch(t *testing.T) {
	cases := []struct{ body, field, rule string }{
		{`{"plan":"standard","plan":"premium"}`, "plan", "duplicateKey"},
		{`{"Plan":"premium"}`, "Plan", "unknown"},
		{`{"settings":{"colour":"red"}}`, "settings.colour", "unknown"},
		{`{"settings":{"title":7}}`, "settings.title", "type"},
		{`{"settings":"x"}`, "settings", "type"},
		{`"x"`, "", "type"},
		{`null`, "", "type"},
	}
	for _, c := range cases {
		_, fe := decodePatch([]byte(c.body))
		if fe == nil || fe.Field != c.field || fe.Rule != c.rule {
			t.Errorf("%s: %+v, want %s/%s", c.body, fe, c.field, c.rule)
		}
	}
	// null removes a member: it is not a type error.
	p, fe := decodePatch([]byte(`{"version":null,"settings":{"language":null,"title":"T"}}`))
	if fe != nil || p["version"] != nil || p["settings"].(map[string]any)["title"] != "T" {
		t.Fatalf("%v %+v", p, fe)
	}
}
