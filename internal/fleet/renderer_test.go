package fleet

import (
	"reflect"
	"testing"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// The fleet repository is the only place a store's spec lives, so parsing what
// render wrote must give back the store exactly.
func TestParseRoundTrip(t *testing.T) {
	oci := render.LocalOptions()
	oci.Chart = render.ChartSource{Kind: render.SourceOCIRepository, URL: "oci://registry.example.com/charts"}
	for _, opts := range []render.Options{render.LocalOptions(), oci} {
		r := FleetRenderer{Options: opts}
		for _, e := range store.Engines {
			for p := range store.Plans {
				in := store.Store{Name: "shop-1", Engine: e, Plan: p, Cluster: "eu-1", Version: "1.2.3",
					Settings: store.Settings{Title: "Ünï \"shop\" --- kind: Secret {{ x }}", AdminEmail: "a@example.com", Currency: "EUR", Country: "DE"}}
				in = in.WithDefaults(opts.BaseDomain)
				for _, st := range []State{StateActive, StateRetained, StatePurging} {
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
					if st != StateActive {
						want = store.Store{Name: in.Name, Engine: in.Engine, Plan: in.Plan, Cluster: in.Cluster}
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s %s %s:\n got %+v\nwant %+v", e, p, st, got, want)
					}
				}
			}
		}
	}
}
