package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

func TestDecodeNamesTheField(t *testing.T) {
	cases := []struct {
		name, body, field, rule string
	}{
		{"unknown top-level", `{"name":"a","colour":"red"}`, "colour", "unknown"},
		{"unknown nested", `{"name":"a","settings":{"title":"x","colour":"red"}}`, "settings.colour", "unknown"},
		{"wrong type", `{"name":42}`, "name", "type"},
		{"wrong nested type", `{"settings":{"title":["x"]}}`, "settings.title", "type"},
		{"settings not object", `{"settings":"x"}`, "settings", "type"},
		{"array body", `[]`, "", "type"},
		{"syntax", `{"name":`, "", "syntax"},
		{"trailing", `{"name":"a"} {"name":"b"}`, "", "syntax"},
		{"empty", ``, "", "syntax"},
		{"invalid utf8", "{\"name\":\"\xff\"}", "", "utf8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s store.Store
			fe := Decode([]byte(c.body), &s)
			if fe == nil {
				t.Fatalf("decoded %q without error", c.body)
			}
			if fe.Field != c.field || fe.Rule != c.rule {
				t.Fatalf("got field %q rule %q (%s), want field %q rule %q", fe.Field, fe.Rule, fe.Detail, c.field, c.rule)
			}
			if fe.Detail == "" {
				t.Fatal("no detail")
			}
		})
	}
}

func TestDecodeKeepsStringsVerbatim(t *testing.T) {
	title := "Ünïcode 🛒 <b>&amp; \"quoted\"\n---\nkind: Secret ${HOME} {{ .Values }} ../../etc"
	raw, _ := json.Marshal(map[string]any{"name": "shop", "settings": map[string]any{"title": title}})
	var s store.Store
	if fe := Decode(raw, &s); fe != nil {
		t.Fatal(fe)
	}
	if s.Settings.Title != title {
		t.Fatalf("title changed: %q", s.Settings.Title)
	}
}

func TestMergePatch(t *testing.T) {
	// Examples from RFC 7396 appendix A.
	cases := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, c := range cases {
		var target, patch, want any
		_ = json.Unmarshal([]byte(c.target), &target)
		_ = json.Unmarshal([]byte(c.patch), &patch)
		_ = json.Unmarshal([]byte(c.want), &want)
		got := MergePatch(target, patch)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("MergePatch(%s, %s) = %v, want %s", c.target, c.patch, got, c.want)
		}
	}
}

// FuzzDecode: whatever the bytes, the decoder either fills the struct or returns a
// field error with a rule; it never panics, and a successful decode round-trips.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"name":"shop","engine":"woocommerce","plan":"basic","settings":{"title":"Shop","adminEmail":"a@b.c"}}`,
		`{"name":"a","settings":{"colour":1}}`, `{"name":`, `[]`, `null`, "{\"name\":\"\xff\"}", `{"name":"a"} x`,
		`{"settings":{"title":"---\nkind: x"}}`, `{"NAME":"x"}`, `{"name":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var s store.Store
		fe := Decode(body, &s)
		if fe != nil {
			if fe.Rule == "" || fe.Detail == "" {
				t.Fatalf("error without rule or detail: %+v", fe)
			}
			if fe.Rule == "unknown" && (fe.Field == "" || strings.ContainsAny(fe.Field, "\n")) {
				t.Fatalf("unknown field not named: %+v", fe)
			}
			return
		}
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back store.Store
		if fe := Decode(raw, &back); fe != nil {
			t.Fatalf("re-decoding %s: %+v", raw, fe)
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip changed %+v to %+v", s, back)
		}
	})
}
