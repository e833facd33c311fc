package render

import (
	"bytes"
	"fmt"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/runtime"
)

// marshal turns a typed object into YAML, byte for byte what sigs.k8s.io/yaml.Marshal gives (a test holds
// it to that), and drops the empty fields the API types always carry (metadata.creationTimestamp: null,
// status: {}, a Namespace's spec: {}), as flux export does. Only whole lines at their fixed place are
// removed: store settings cannot contain line breaks, so no value can imitate them.
//
// sigs.k8s.io/yaml goes typed object → JSON → YAML parser → YAML encoder. Here the object goes to a map
// by reflection (runtime.DefaultUnstructuredConverter, honouring json tags and MarshalJSON like
// encoding/json, integers as int64 as the YAML parser gives them) and straight to the same YAML encoder,
// skipping the JSON text and its parse: about half of the work.
func marshal(o any) ([]byte, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("render: marshal %T: %w", o, err)
	}
	b, err := yamlv2.Marshal(u)
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
