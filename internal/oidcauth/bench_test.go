package oidcauth

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testidp"
)

// What an OIDC token costs per request once the issuer's keys are cached: parsing, one RS256
// signature check and the claim checks (no network).
func BenchmarkAuthenticate(b *testing.B) {
	idp := testidp.Start(b, testidp.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := newVerifier(ctx, Config{Issuer: idp.Issuer, Audience: testidp.DefaultAudience}, nil, http.DefaultClient, 0)
	if err != nil {
		b.Fatal(err)
	}
	tok := idp.UserToken(b, testidp.DefaultUser, testidp.DefaultUserPassword)
	for i := 0; !v.Ready() && i < 200; i++ {
		_, _ = v.Authenticate(ctx, tok)
		time.Sleep(50 * time.Millisecond) // discovery runs in the background
	}
	if _, err := v.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
