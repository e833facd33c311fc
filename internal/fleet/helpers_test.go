package fleet_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

var renderer = render.Renderer{Options: render.LocalOptions()}

func shop(name, domain string) store.Store {
	return store.Store{Name: name, Engine: store.WooCommerce, Plan: store.Basic, Domain: domain,
		Settings: store.Settings{AdminEmail: "owner@example.com"}}
}

// seed writes an active store's folder into r as a push from outside would.
func seed(t *testing.T, r *memRepo, s store.Store) {
	t.Helper()
	s = s.WithDefaults("")
	files, err := renderer.Render(s, store.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	r.put(store.Dir(s.Cluster, s.Name), files)
}

func newService(t *testing.T, r *memRepo, mod ...func(*fleet.Config)) *fleet.Service {
	t.Helper()
	cfg := fleet.Config{Repo: r, Renderer: renderer}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := fleet.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

var reqs atomic.Int64

// meta is a request's identity, a new id each time.
func meta() store.Meta {
	return store.Meta{Actor: "test", RequestID: fmt.Sprintf("req-%d", reqs.Add(1))}
}

// fieldRule returns the rule err breaks for field, "" if none.
func fieldRule(err error, field string) string {
	for _, f := range store.FieldErrors(err) {
		if f.Field == field {
			return f.Rule
		}
	}
	return ""
}
