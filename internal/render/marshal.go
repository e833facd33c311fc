package render

import (
	"bytes"
	"fmt"
	"slices"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/runtime"
)

// encode turns typed objects into one YAML file, documents separated by "---", byte for byte what
// sigs.k8s.io/yaml.Marshal gives for each (tests hold it to that), minus the empty fields the API types
// always carry (metadata.creationTimestamp: null, status: {}, a Namespace's spec: {}), as flux export
// strips them. They are dropped from the object before encoding, not cut from the text, so no value can
// ever be mistaken for them.
//
// sigs.k8s.io/yaml goes typed object → JSON → YAML parser → YAML encoder, one encoder per object. Here each
// object goes to a map by reflection (runtime.DefaultUnstructuredConverter, honouring json tags and
// MarshalJSON like encoding/json, integers as int64 as the YAML parser gives them) straight into the same
// YAML encoder, one per file: no JSON text, no re-parse. Maps are handed over as key-sorted MapSlices:
// the encoder's own map-key sort compares keys rune by rune with allocations and was a third of the
// time. Every key render writes is a fixed field or label name (never user input), for which byte order
// is the encoder's order; the tests comparing with sigs.k8s.io/yaml would catch a key where it is not.
func encode(objs ...any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(1024 * len(objs))
	enc := yamlv2.NewEncoder(&buf)
	for _, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("render: marshal %T: %w", o, err)
		}
		// The API types always carry these empty fields; flux export drops them too.
		if md, ok := u["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
			delete(md, "creationTimestamp")
		}
		for _, k := range []string{"status", "spec"} {
			if m, ok := u[k].(map[string]any); ok && len(m) == 0 {
				delete(u, k)
			}
		}
		if err := enc.Encode(sorted(u)); err != nil {
			return nil, fmt.Errorf("render: marshal %T: %w", o, err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render: marshal: %w", err)
	}
	return buf.Bytes(), nil
}

// sorted turns every map in an unstructured object into a yamlv2.MapSlice with keys in byte order.
func sorted(v any) any {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		ms := make(yamlv2.MapSlice, len(keys))
		for i, k := range keys {
			ms[i] = yamlv2.MapItem{Key: k, Value: sorted(t[k])}
		}
		return ms
	case []any:
		for i, e := range t {
			t[i] = sorted(e)
		}
	}
	return v
}
