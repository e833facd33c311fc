package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/apitoken"
	"github.com/storefleet/storefleet/internal/oidcauth"
	"github.com/storefleet/storefleet/internal/testidp"
)

// authBench is one fleet served three ways, as serve wires it without and with
// --auth-config: no authentication, and the Gate (an API token file, a verifier of
// the real test IdP's JWTs) with the access decorator.
type authBench struct {
	fleet        *benchFleet
	none, authed *httptest.Server
	token, jwt   string
}

func newAuthBench(b *testing.B) *authBench {
	b.Helper()
	f := newBenchFleet(b, 0)
	b.Cleanup(f.close)
	idp := testidp.Start(b, testidp.Options{TokenLifetime: time.Hour})
	dir := b.TempDir()
	tok, sum, err := apitoken.Generate()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte("tokens:\n- {name: bench, tenant: bench, role: editor, sha256: "+sum+"}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`oidc: {issuer: %q, audience: %q}
apiTokens: {file: tokens.yaml}
rules:
  - {groups: [%s], method: oidc, tenants: [bench], role: editor}
limits: {readsPerMinute: 1000000, writesPerMinute: 1000000, storesPerTenant: 1000000}
`, idp.Issuer, idp.Audience(), testidp.AutomationGroup)), 0o600); err != nil {
		b.Fatal(err)
	}
	c, err := access.Load(conf)
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := apitoken.Open(c.APITokens.File, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	v, err := oidcauth.New(ctx, oidcauth.Config{Issuer: c.OIDC.Issuer, Audience: c.OIDC.Audience}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for !v.Ready() {
		time.Sleep(10 * time.Millisecond) // discovery, once, before anything is measured
	}
	gate := access.NewGate(access.NewPolicy(c), tokens, v)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authed := httptest.NewServer(api.Handler(access.NewService(f.svc, f.svc, access.Options{Limits: c.Limits}),
		api.Options{Log: log, Authenticate: gate.Principal, Limits: api.Limits{Reads: c.Limits.ReadsPerMinute, Writes: c.Limits.WritesPerMinute}}))
	b.Cleanup(authed.Close)
	return &authBench{fleet: f, none: f.api, authed: authed, token: tok,
		jwt: idp.ClientToken(b, testidp.AutomationClient, testidp.AutomationSecret)}
}

// BenchmarkAuthCreate: what authentication adds to the create path. One client
// creates stores by turns without authentication, with an API token and with an
// OIDC JWT, on one fleet in one run (so the machine's load falls on all three
// alike), and reports each one's p50 and the ratios to the unauthenticated p50.
func BenchmarkAuthCreate(b *testing.B) {
	ab := newAuthBench(b)
	modes := []struct {
		name, bearer string
		srv          *httptest.Server
	}{{"none", "", ab.none}, {"token", ab.token, ab.authed}, {"oidc", ab.jwt, ab.authed}}
	lat := make([][]time.Duration, len(modes))
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range modes {
			// Rotate who goes first, so no mode always follows another's push.
			m := modes[(k+i)%len(modes)]
			name := fmt.Sprintf("auth-%s-%d", m.name, benchSeq.Add(1))
			req, _ := http.NewRequest("POST", m.srv.URL+"/api/v1/stores",
				strings.NewReader(`{"name":"`+name+`","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`))
			req.Header.Set("Content-Type", "application/json")
			if m.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+m.bearer)
			}
			s := time.Now()
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			d := time.Since(s)
			if res.StatusCode != http.StatusAccepted {
				b.Fatalf("%s create: %d %s", m.name, res.StatusCode, body)
			}
			idx := (k + i) % len(modes)
			lat[idx] = append(lat[idx], d)
		}
	}
	b.StopTimer()
	p50 := make([]float64, len(modes))
	for k, l := range lat {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		p50[k] = float64(l[len(l)/2].Microseconds()) / 1000
		b.ReportMetric(p50[k], "p50-ms-"+modes[k].name)
	}
	b.ReportMetric(p50[1]/p50[0], "token/none-p50")
	b.ReportMetric(p50[2]/p50[0], "oidc/none-p50")
}

// BenchmarkAuthenticate is the authentication step alone: a request the API answers
// without the store service (a request id it refuses by form), without a token, with
// an API token and with a JWT. The difference to "none" is what one request pays.
func BenchmarkAuthenticate(b *testing.B) {
	ab := newAuthBench(b)
	for _, m := range []struct {
		name, bearer string
		h            http.Handler
	}{{"none", "", ab.none.Config.Handler}, {"token", ab.token, ab.authed.Config.Handler}, {"oidc", ab.jwt, ab.authed.Config.Handler}} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("GET", "/api/v1/requests/not%20an%20id", nil)
				if m.bearer != "" {
					req.Header.Set("Authorization", "Bearer "+m.bearer)
				}
				w := httptest.NewRecorder()
				m.h.ServeHTTP(w, req)
				if w.Code != http.StatusNotFound {
					b.Fatalf("%s: %d %s", m.name, w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkAuthCreateConcurrent: 50 clients creating at once in one tenant, without
// authentication and with an API token, one mode after the other on one fleet. The
// access decorator takes a per-tenant lock around its quota check and the create,
// so this shows what that costs the group commit.
func BenchmarkAuthCreateConcurrent(b *testing.B) {
	ab := newAuthBench(b)
	for _, m := range []struct {
		name, bearer string
		srv          *httptest.Server
	}{{"none", "", ab.none}, {"token", ab.token, ab.authed}} {
		b.Run(m.name, func(b *testing.B) {
			const clients = 50
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			var next, failed atomic.Int64
			b.ResetTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						name := fmt.Sprintf("conc-%s-%d", m.name, benchSeq.Add(1))
						req, _ := http.NewRequest("POST", m.srv.URL+"/api/v1/stores",
							strings.NewReader(`{"name":"`+name+`","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`))
						req.Header.Set("Content-Type", "application/json")
						if m.bearer != "" {
							req.Header.Set("Authorization", "Bearer "+m.bearer)
						}
						res, err := client.Do(req)
						if err != nil {
							failed.Add(1)
							continue
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != http.StatusAccepted {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(t0)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d creates failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "stores/s")
		})
	}
}
