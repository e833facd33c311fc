package render

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"
)

// marshal turns a typed object into YAML and drops the empty fields the API types always carry
// (metadata.creationTimestamp: null, status: {}, a Namespace's spec: {}), as flux export does. Only whole lines at their fixed
// indentation are removed: store settings cannot contain line breaks, so no value can imitate them.
func marshal(o any) ([]byte, error) {
	b, err := yaml.Marshal(o)
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
