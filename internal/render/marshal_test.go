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
			for _, st := range []state{live, retained, purgeStep1} {
				s := shop(e, p)
				s.Settings.Title = "1e3"
				_, objs, err := objects(s, LocalOptions(), st)
				if err != nil {
					t.Fatal(err)
				}
				for name, list := range objs {
					for _, o := range list {
						assertSameAsSigs(t, name, o)
					}
				}
			}
		}
	}
}

func assertSameAsSigs(t *testing.T, name string, o any) {
	t.Helper()
	got, err := marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	ref = bytes.Replace(ref, []byte("\n  creationTimestamp: null\n"), []byte("\n"), 1)
	ref = bytes.TrimSuffix(ref, []byte("status: {}\n"))
	ref = bytes.TrimSuffix(ref, []byte("spec: {}\n"))
	if !bytes.Equal(got, ref) {
		t.Fatalf("%s: %T differs from sigs.k8s.io/yaml:\n%s\n---- sigs:\n%s", name, o, got, ref)
	}
}
