package render

import (
	"bytes"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// TestMarshalMatchesSigsYAML holds the fast marshal to the bytes of sigs.k8s.io/yaml for every object of
// every engine, plan and state (after the same stripping).
func TestMarshalMatchesSigsYAML(t *testing.T) {
	for _, e := range store.Engines {
		for _, p := range store.PlanNames {
			for _, st := range []store.State{store.StateActive, store.StateRetained, store.StatePurging} {
				s := shop(e, p)
				s.Settings.Title = "1e3"
				_, objs, err := objects(s, LocalOptions(), st)
				if err != nil {
					t.Fatal(err)
				}
				for name, list := range objs {
					assertSameAsSigs(t, name, list)
				}
			}
		}
	}
}

// assertSameAsSigs checks encode against sigs.k8s.io/yaml.Marshal of each object, with the same lines
// stripped and "---" between documents.
func assertSameAsSigs(t *testing.T, name string, objs []any) {
	t.Helper()
	got, err := encode(objs...)
	if err != nil {
		t.Fatal(err)
	}
	var ref []byte
	for i, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte("\n  creationTimestamp: null\n"), []byte("\n"), 1)
		b = bytes.TrimSuffix(b, []byte("status: {}\n"))
		b = bytes.TrimSuffix(b, []byte("spec: {}\n"))
		if i > 0 {
			ref = append(ref, "---\n"...)
		}
		ref = append(ref, b...)
	}
	if !bytes.Equal(got, ref) {
		t.Fatalf("%s differs from sigs.k8s.io/yaml:\n%s\n---- sigs:\n%s", name, got, ref)
	}
}
