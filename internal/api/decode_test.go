package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

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

// FuzzDecode checks Decode's verdict on a store body against refJSON, a small JSON
// reader written for this test alone (it shares nothing with encoding/json or
// checkKeys), on the strict-JSON rules of the API contract:
//
//   - not valid UTF-8: refused, rule utf8;
//   - not exactly one valid JSON value (syntax, trailing data, nesting deeper than
//     encoding/json's 10000 levels): refused;
//   - a key given twice in one object, after unescaping (duplicateKey), or a key the
//     store does not declare exactly as spelled, case included (unknown): refused,
//     naming the first such key in document order by its path;
//   - a value of the wrong JSON type for its field: refused, rule type;
//   - anything else is accepted, and what was read survives a round trip.
//
// The size limit sits in front of Decode (readRaw) and nesting past 10000 levels
// needs inputs too large to fuzz quickly; TestDecodeLimits covers both.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"name":"shop","engine":"woocommerce","plan":"basic","settings":{"title":"Shop","adminEmail":"a@b.c"}}`,
		`{"name":"a","settings":{"colour":1}}`, `{"name":`, `[]`, `null`, "{\"name\":\"\xff\"}", `{"name":"a"} x`,
		`{"settings":{"title":"---\nkind: x"}}`, `{"NAME":"x"}`, `{"name":"\u0000"}`,
		`{"name":"a","name":"b"}`, `{"name":"a","n\u0061me":"b"}`, `{"name":"a","Name":"b"}`,
		`{"settings":{"title":"a","title":"b"}}`, `{"settings":{"Title":"a"}}`, `{"version":{"x":1,"x":2}}`,
		`{"name":["\ud800","\udc00"]}`, `{"\ud800":1,"\udfff":2}`, `{"name":"a"}{"name":"b"}`, `{"name":"a"} `,
		`{"name":1}`, `{"settings":[]}`, `{"settings":null,"name":null}`, `{"name":"a",}`, `{"name":01}`,
		`{"name":-0.5e+3}`, `{"name":"\/\b\f\n\r\t\"\\"}`, "{\"name\":\"a\tb\"}", ` {"name" : "x" } `,
		`{"":1}`, `{"settings":{"":1,"":2}}`, `{"cluster":true,"domain":false}`, `{"plan":{}}`,
		strings.Repeat("[", 64) + strings.Repeat("]", 64), `{"settings":{"title":[[[{"a":[]}]]]}}`,
		`{"name":` + strings.Repeat(`{"a":`, 50) + `{"b":1,"b":2}` + strings.Repeat("}", 50) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxBodyBytes {
			return // readRaw refuses it before Decode sees it
		}
		var s store.Store
		fe := Decode(body, &s)
		want := refVerdict(body)
		if fe == nil {
			if want.refused {
				t.Fatalf("Decode accepted %q; the reference refuses it: rule %s field %q", body, want.rule, want.field)
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
			return
		}
		if fe.Rule == "" || fe.Detail == "" {
			t.Fatalf("error without rule or detail: %+v", fe)
		}
		if !want.refused {
			t.Fatalf("Decode refused %q (rule %s field %q: %s); the reference accepts it", body, fe.Rule, fe.Field, fe.Detail)
		}
		switch want.rule {
		case "utf8", "duplicateKey", "unknown":
			if fe.Rule != want.rule || fe.Field != want.field {
				t.Fatalf("Decode on %q: rule %s field %q (%s); the reference says rule %s field %q",
					body, fe.Rule, fe.Field, fe.Detail, want.rule, want.field)
			}
		case "type":
			if fe.Rule != "type" {
				t.Fatalf("Decode on %q: rule %s (%s); the reference says type", body, fe.Rule, fe.Detail)
			}
		case "syntax":
			// Past the first value encoding/json may name a type or an unknown field
			// of that value before it sees the rest; any refusal is right.
			if fe.Rule == "utf8" || fe.Rule == "duplicateKey" {
				t.Fatalf("Decode on %q: rule %s (%s); the reference says it is not one JSON value", body, fe.Rule, fe.Detail)
			}
		}
	})
}

// The limits in front of the decoder: a body over MaxBodyBytes is refused with 413
// before it is read further, and nesting past encoding/json's depth is a syntax error,
// not a crash, even where checkKeys (which has no depth limit) reads it first.
func TestDecodeLimits(t *testing.T) {
	big := `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	r := httptest.NewRequest("POST", "/api/v1/stores", strings.NewReader(big))
	r.Header.Set("Content-Type", "application/json")
	if _, p := readRaw(httptest.NewRecorder(), r); p == nil || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a %d-byte body: %+v, want 413", len(big), p)
	}
	for _, c := range []struct {
		depth int
		rule  string
	}{{9998, "type"}, {10001, "syntax"}, {20000, "syntax"}} {
		deep := `{"settings":{"title":` + strings.Repeat("[", c.depth-2) + strings.Repeat("]", c.depth-2) + `}}`
		var s store.Store
		if fe := Decode([]byte(deep), &s); fe == nil || fe.Rule != c.rule {
			t.Errorf("%d levels deep: %+v, want rule %s", c.depth, fe, c.rule)
		}
		if v := refVerdict([]byte(deep)); v.rule != c.rule {
			t.Errorf("%d levels deep: the reference says %+v, want rule %s", c.depth, v, c.rule)
		}
	}
}

// verdict is the reference's reading of a store body.
type verdict struct {
	refused     bool
	rule, field string
}

// refSchema describes the JSON keys of a store body: each declared key maps to the
// schema of its value; a leaf is a string field. nil means nothing is known of the
// value (only duplicate keys are looked for inside it).
type refSchema struct {
	fields map[string]*refSchema
	leaf   bool
}

var refStore = func() *refSchema {
	str := &refSchema{leaf: true}
	settings := &refSchema{fields: map[string]*refSchema{}}
	for _, k := range []string{"title", "adminEmail", "currency", "country", "language", "regionName"} {
		settings.fields[k] = str
	}
	s := &refSchema{fields: map[string]*refSchema{"settings": settings}}
	for _, k := range []string{"name", "engine", "plan", "cluster", "domain", "version"} {
		s.fields[k] = str
	}
	return s
}()

// refNode is a parsed JSON value: kind is one of o a s n t f z (object, array,
// string, number, true, false, null).
type refNode struct {
	kind  byte
	keys  []string
	vals  []*refNode
	depth int
}

func refVerdict(body []byte) verdict {
	if !utf8.Valid(body) {
		return verdict{true, "utf8", ""}
	}
	p := &refParser{b: body}
	p.ws()
	v, ok := p.value(1)
	p.ws()
	if !ok || p.i != len(body) {
		return verdict{true, "syntax", ""}
	}
	if rule, field, found := refKeys(v, refStore, ""); found {
		return verdict{true, rule, field}
	}
	if v.depth > 10000 {
		return verdict{true, "syntax", ""}
	}
	if !refTypes(v, refStore) {
		return verdict{true, "type", ""}
	}
	return verdict{}
}

// refKeys finds the first duplicate or undeclared key in document order.
func refKeys(v *refNode, sc *refSchema, path string) (string, string, bool) {
	switch v.kind {
	case 'o':
		seen := map[string]bool{}
		for i, k := range v.keys {
			kp := k
			if kp == "" {
				kp = `""`
			}
			if path != "" {
				kp = path + "." + kp
			}
			if seen[k] {
				return "duplicateKey", kp, true
			}
			seen[k] = true
			var child *refSchema
			if sc != nil && sc.fields != nil {
				c, ok := sc.fields[k]
				if !ok {
					return "unknown", kp, true
				}
				child = c
			}
			if child != nil && child.leaf {
				child = nil
			}
			if r, f, ok := refKeys(v.vals[i], child, kp); ok {
				return r, f, ok
			}
		}
	case 'a':
		for i, e := range v.vals {
			if r, f, ok := refKeys(e, nil, fmt.Sprintf("%s[%d]", path, i)); ok {
				return r, f, ok
			}
		}
	}
	return "", "", false
}

// refTypes: null fits any field; a string field takes a string, an object field an object.
func refTypes(v *refNode, sc *refSchema) bool {
	if v.kind == 'z' {
		return true
	}
	if sc.leaf {
		return v.kind == 's'
	}
	if v.kind != 'o' {
		return false
	}
	for i, k := range v.keys {
		if !refTypes(v.vals[i], sc.fields[k]) {
			return false
		}
	}
	return true
}

// refParser reads RFC 8259 JSON.
type refParser struct {
	b []byte
	i int
}

func (p *refParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *refParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func (p *refParser) value(depth int) (*refNode, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		n := &refNode{kind: 'o', depth: depth}
		p.ws()
		if p.lit("}") {
			return n, true
		}
		for {
			p.ws()
			k, ok := p.str()
			if !ok {
				return nil, false
			}
			p.ws()
			if !p.lit(":") {
				return nil, false
			}
			p.ws()
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			n.keys, n.vals, n.depth = append(n.keys, k), append(n.vals, v), max(n.depth, v.depth)
			p.ws()
			if p.lit("}") {
				return n, true
			}
			if !p.lit(",") {
				return nil, false
			}
		}
	case c == '[':
		p.i++
		n := &refNode{kind: 'a', depth: depth}
		p.ws()
		if p.lit("]") {
			return n, true
		}
		for {
			p.ws()
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			n.vals, n.depth = append(n.vals, v), max(n.depth, v.depth)
			p.ws()
			if p.lit("]") {
				return n, true
			}
			if !p.lit(",") {
				return nil, false
			}
		}
	case c == '"':
		_, ok := p.str()
		return &refNode{kind: 's', depth: depth}, ok
	case c == 't' && p.lit("true"):
		return &refNode{kind: 't', depth: depth}, true
	case c == 'f' && p.lit("false"):
		return &refNode{kind: 'f', depth: depth}, true
	case c == 'n' && p.lit("null"):
		return &refNode{kind: 'z', depth: depth}, true
	case c == '-' || c >= '0' && c <= '9':
		return &refNode{kind: 'n', depth: depth}, p.num()
	}
	return nil, false
}

func (p *refParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *refParser) num() bool {
	p.lit("-")
	if p.lit("0") {
		// no more digits may follow a leading zero
	} else if p.i >= len(p.b) || p.b[p.i] < '1' || p.b[p.i] > '9' || p.digits() == 0 {
		return false
	}
	if p.lit(".") && p.digits() == 0 {
		return false
	}
	if p.lit("e") || p.lit("E") {
		_ = p.lit("+") || p.lit("-")
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

// str reads a string and returns it unescaped; a \u escape that is half of a
// surrogate pair with no other half becomes U+FFFD, as it does in encoding/json.
func (p *refParser) str() (string, bool) {
	if !p.lit(`"`) {
		return "", false
	}
	var out []rune
	hex4 := func() (rune, bool) {
		if len(p.b)-p.i < 4 {
			return 0, false
		}
		v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
		if err != nil || strings.ContainsAny(string(p.b[p.i:p.i+4]), "+-_xX") {
			return 0, false
		}
		p.i += 4
		return rune(v), true
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return "", false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, rune(e))
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4()
				if !ok {
					return "", false
				}
				if r >= 0xD800 && r < 0xDC00 && p.lit(`\u`) {
					save := p.i
					r2, ok := hex4()
					if !ok {
						return "", false
					}
					if r2 >= 0xDC00 && r2 < 0xE000 {
						out = append(out, 0x10000+(r-0xD800)<<10+(r2-0xDC00))
						continue
					}
					p.i = save - 2 // the second escape stands on its own
					out = append(out, utf8.RuneError)
					continue
				}
				if r >= 0xD800 && r < 0xE000 {
					r = utf8.RuneError
				}
				out = append(out, r)
			default:
				return "", false
			}
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			out = append(out, r)
			p.i += size
		}
	}
	return "", false
}
