package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/storefleet/storefleet/internal/store"
)

// checkKeys refuses the two things in a JSON body that encoding/json lets through
// silently, so that the server never acts on a reading of the body the client did
// not mean:
//
//   - a key given twice in one object (rule duplicateKey): encoding/json keeps the
//     last value, a client's own parser may keep the first;
//   - a key that names a field of t only if case is ignored (rule unknown):
//     encoding/json would take "Name" for name, so `{"name":"a","Name":"b"}` would
//     be read as b.
//
// Keys are compared after unescaping, so "\u006eame" is the key name. Where t says
// nothing about an object (a map, an interface, a type with its own UnmarshalJSON)
// only duplicates are looked for. A body that is not valid JSON is left to the
// decoder, which names the syntax error; checkKeys then returns nil.
func checkKeys(body []byte, t reflect.Type) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	fe, err := walkKeys(dec, t, "")
	if err != nil {
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		// More than one value: the decoder refuses that, with its own message.
		return nil
	}
	return fe
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// opaque reports whether encoding/json hands values of t to t's own decoder, so that
// its json tags (if any) say nothing about the keys it accepts.
func opaque(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || pt.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler)
}

// walkKeys reads one JSON value from dec. t is the Go type the value will be decoded
// into, or nil when it is not known. It returns the first finding in document order,
// or an error when the body is not valid JSON.
func walkKeys(dec *json.Decoder, t reflect.Type, path string) (*FieldError, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Interface || opaque(t)) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = exactFields(t)
		}
		seen := map[string]bool{}
		var first *FieldError
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, ok := kt.(string)
			if !ok {
				return nil, errors.New("object key is not a string")
			}
			kp := join(path, key)
			var child reflect.Type
			switch {
			case first != nil:
				// Keep reading only to be sure the body is valid JSON.
			case seen[key]:
				first = &FieldError{Field: kp, Rule: "duplicateKey", Detail: fmt.Sprintf("%s is given more than once", kp)}
			case fields != nil:
				ft, ok := fields[key]
				if !ok {
					first = unknownKey(kp, key, fields)
				}
				child = ft
			case t != nil && t.Kind() == reflect.Map:
				child = t.Elem()
			}
			seen[key] = true
			fe, err := walkKeys(dec, child, kp)
			if err != nil {
				return nil, err
			}
			if first == nil {
				first = fe
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return first, nil
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		var first *FieldError
		for i := 0; dec.More(); i++ {
			fe, err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if first == nil {
				first = fe
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return first, nil
	}
	return nil, nil
}

// unknownKey names a key the struct does not declare, and the field it was probably
// meant to be when only its case is wrong.
func unknownKey(path, key string, fields map[string]reflect.Type) *FieldError {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return &FieldError{Field: path, Rule: "unknown",
				Detail: fmt.Sprintf("unknown field %q: field names are case-sensitive, did you mean %q?", path, name)}
		}
	}
	return &FieldError{Field: path, Rule: "unknown", Detail: fmt.Sprintf("unknown field %q", path)}
}

// exactFields maps each JSON name of struct t, exactly as its tag spells it, to the
// field's type, following embedded structs as encoding/json does.
func exactFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range exactFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		// A field of the outer struct wins over one promoted from an embedded struct.
		out[name] = f.Type
	}
	return out
}

// decodePatch reads a JSON merge patch of a store as strictly as a create: every key
// must be a store field spelled exactly, no key may be given twice, and every value
// that is not null must have the field's type. Checking here, before the service is
// called, keeps a malformed patch from ever reaching the store's lock or binding an
// Idempotency-Key.
func decodePatch(body []byte) (map[string]any, *FieldError) {
	var patch map[string]any
	if fe := Decode(body, &patch); fe != nil {
		if fe.Rule == "type" {
			fe.Detail = "a merge patch must be a JSON object"
		}
		return nil, fe
	}
	if patch == nil {
		return nil, &FieldError{Rule: "type", Detail: "a merge patch must be a JSON object"}
	}
	if fe := checkKeys(body, reflect.TypeFor[store.Store]()); fe != nil {
		return nil, fe
	}
	// null removes a member, so only the other values are checked against the types.
	values, err := json.Marshal(withoutNulls(patch))
	if err != nil {
		return nil, &FieldError{Rule: "syntax", Detail: err.Error()}
	}
	var typed store.Store
	if fe := Decode(values, &typed); fe != nil {
		return nil, fe
	}
	return patch, nil
}

func withoutNulls(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if x != nil {
			out[k] = withoutNulls(x)
		}
	}
	return out
}

// canonicalJSON returns body re-encoded so that two bodies meaning the same JSON
// value are the same bytes: object keys sorted, no insignificant whitespace, strings
// escaped one way. Numbers keep their literal (json.Number), so 1 and 1.0 stay
// different, as they are to a strict decoder. An empty body stays empty; a body that
// does not parse is returned as it is (it was refused before it got here).
func canonicalJSON(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	if _, err := dec.Token(); err != io.EOF {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}
