package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	yamlv2 "go.yaml.in/yaml/v2"
)

// marshal turns a typed object into YAML, byte for byte what sigs.k8s.io/yaml.Marshal gives (a test holds
// it to that), and drops the empty fields the API types always carry (metadata.creationTimestamp: null,
// status: {}, a Namespace's spec: {}), as flux export does. Only whole lines at their fixed place are
// removed: store settings cannot contain line breaks, so no value can imitate them.
//
// sigs.k8s.io/yaml goes JSON → YAML parser → YAML encoder; parsing the JSON with the YAML parser is the
// slow half, so the JSON is decoded with encoding/json instead, numbers typed the way the YAML parser
// would type them (int for integers, float64 otherwise) so the encoder writes the same bytes.
func marshal(o any) ([]byte, error) {
	j, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("render: marshal %T: %w", o, err)
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("render: marshal %T: %w", o, err)
	}
	v, err = yamlNumbers(v)
	if err != nil {
		return nil, fmt.Errorf("render: marshal %T: %w", o, err)
	}
	b, err := yamlv2.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("render: marshal %T: %w", o, err)
	}
	b = bytes.Replace(b, []byte("\n  creationTimestamp: null\n"), []byte("\n"), 1)
	for _, empty := range []string{"status: {}\n", "spec: {}\n"} {
		if bytes.HasSuffix(b, []byte("\n"+empty)) {
			b = b[:len(b)-len(empty)]
		}
	}
	return b, nil
}

// yamlNumbers replaces json.Numbers with the Go types yaml.v2's parser gives the same literals.
func yamlNumbers(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := yamlNumbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
	case []any:
		for i, e := range t {
			n, err := yamlNumbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			if i >= math.MinInt && i <= math.MaxInt {
				return int(i), nil
			}
			return i, nil
		}
		// Our objects hold no floats or huge integers; refuse rather than risk a different rendering.
		return nil, fmt.Errorf("number %s is not an int", t)
	}
	return v, nil
}
