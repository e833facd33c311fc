package render

import (
	"reflect"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// The fleet repository is the only place a store's spec lives, so parsing what
// render wrote must give back the store exactly.
func TestParseRoundTrip(t *testing.T) {
	oci := LocalOptions()
	oci.Chart = ChartSource{Kind: SourceOCIRepository, URL: "oci://registry.example.com/charts", Namespace: "flux-system"}
	for _, opts := range []Options{LocalOptions(), oci} {
		r := Renderer{Options: opts}
		for _, e := range store.Engines {
			for p := range store.Plans {
				in := store.Store{Name: "shop-1", Engine: e, Plan: p, Cluster: "eu-1", Version: "1.2.3",
					Tenant:   "acme-1",
					Settings: store.Settings{Title: "Ünï \"shop\" --- kind: Secret {{ x }}", AdminEmail: "a@example.com", Currency: "EUR", Country: "DE"}}
				in = in.WithDefaults(opts.BaseDomain)
				for _, st := range []store.State{store.StateActive, store.StateRetained, store.StatePurging} {
					files, err := r.Render(in, st)
					if err != nil {
						t.Fatal(err)
					}
					got, gotState, err := r.Parse(files)
					if err != nil {
						t.Fatalf("%s %s %s: %v", e, p, st, err)
					}
					if gotState != st {
						t.Fatalf("%s %s: state %s, want %s", e, p, gotState, st)
					}
					want := in
					if st != store.StateActive {
						want = store.Store{Name: in.Name, Engine: in.Engine, Plan: in.Plan, Cluster: in.Cluster, Tenant: in.Tenant}
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s %s %s:\n got %+v\nwant %+v", e, p, st, got, want)
					}
				}
			}
		}
	}
}

// A deleted store read back from Git lacks its settings; rendering its retained and
// purge states from that must give exactly the files rendered from the full store.
func TestRetainedRendersFromParsedStore(t *testing.T) {
	r := Renderer{Options: LocalOptions()}
	for _, e := range store.Engines {
		full := store.Store{Name: "gone", Engine: e, Plan: "standard", Cluster: "eu-1", Tenant: "acme",
			Settings: store.Settings{Title: "T", AdminEmail: "real@example.com"}}.WithDefaults("")
		for _, st := range []store.State{store.StateRetained, store.StatePurging} {
			want, err := r.Render(full, st)
			if err != nil {
				t.Fatal(err)
			}
			parsed, _, err := r.Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Render(parsed, st)
			if err != nil {
				t.Fatalf("%s %s from the parsed store: %v", e, st, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %s: files differ when rendered from the parsed store", e, st)
			}
		}
	}
}
