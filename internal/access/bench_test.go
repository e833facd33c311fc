package access_test

import (
	"context"
	"testing"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/store"
)

// BenchmarkGet: what the decorator adds to a read, the fleet's own cost beside it.
func BenchmarkGet(b *testing.B) {
	w := newWorld(b, access.Limits{})
	for _, c := range []struct {
		name string
		svc  store.Service
		ctx  context.Context
	}{
		{"fleet", w.fleet, context.Background()},
		{"decorated", w.svc, as(editorA)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.svc.Get(c.ctx, "a1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGate: from a bearer token to a principal, without the authenticator's own
// cost (a stub), i.e. the chain and the rules.
func BenchmarkGate(b *testing.B) {
	c, err := access.Parse([]byte(policyDoc))
	if err != nil {
		b.Fatal(err)
	}
	oidc := &stub{prefix: "ey", id: store.Identity{Subject: "https://idp.example.com#u", Method: store.AuthOIDC,
		Groups: []string{"x", "y", "all-viewers", "shop-a-editors"}}}
	g := access.NewGate(access.NewPolicy(c), &stub{prefix: "sf_"}, oidc)
	ctx := context.Background()
	for b.Loop() {
		if _, err := g.Principal(ctx, "eyJhbGciOi.payload.signature"); err != nil {
			b.Fatal(err)
		}
	}
}
