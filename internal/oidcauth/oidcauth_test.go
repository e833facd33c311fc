package oidcauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testidp"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testVerifier lets every unknown key id refetch (refetchEvery 0), so that what each test
// sees is the verification itself; TestRefetchThrottled checks the throttle.
func testVerifier(t *testing.T, issuer string, logs *syncBuf) *Verifier {
	t.Helper()
	return throttledVerifier(t, issuer, logs, http.DefaultClient, 0)
}

func throttledVerifier(t *testing.T, issuer string, logs *syncBuf, client *http.Client, every time.Duration) *Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	v, err := newVerifier(ctx, Config{Issuer: issuer, Audience: testidp.DefaultAudience}, log, client, every)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// authenticate waits (bounded) for discovery, then checks tok.
func authenticate(t *testing.T, v *Verifier, tok string) (store.Identity, error) {
	t.Helper()
	for i := 0; i < 200 && !v.Ready(); i++ {
		// Nudge discovery as a real request would; its answer is EUNAVAILABLE meanwhile.
		_, _ = v.Authenticate(context.Background(), tok)
		time.Sleep(50 * time.Millisecond)
	}
	if !v.Ready() {
		t.Fatal("discovery never succeeded")
	}
	return v.Authenticate(context.Background(), tok)
}

func wantCode(t *testing.T, err error, code string, tok string) {
	t.Helper()
	if store.ErrorCode(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	if tok != "" && strings.Contains(err.Error(), tok) {
		t.Fatal("the error carries the token")
	}
}

func TestAcceptsRealFlowTokens(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	v := testVerifier(t, idp.Issuer, nil)

	id, err := authenticate(t, v, idp.UserToken(t, testidp.DefaultUser, testidp.DefaultUserPassword))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != idp.Issuer+"#"+testidp.DefaultUser || id.Method != store.AuthOIDC || !slices.Equal(id.Groups, []string{testidp.DefaultUserGroup}) || id.Grants != nil {
		t.Fatalf("user identity: %+v", id)
	}

	id, err = authenticate(t, v, idp.ClientToken(t, testidp.AutomationClient, testidp.AutomationSecret))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != idp.Issuer+"#"+testidp.AutomationClient || !slices.Equal(id.Groups, []string{testidp.AutomationGroup}) {
		t.Fatalf("client identity: %+v", id)
	}
}

func TestRefusesInvalidTokens(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	logs := &syncBuf{}
	v := testVerifier(t, idp.Issuer, logs)
	now := time.Now()
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	valid := idp.Mint(t, testidp.MintRequest{Subject: "bob"})
	if _, err := authenticate(t, v, valid); err != nil {
		t.Fatalf("the baseline minted token is refused: %v", err)
	}

	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": idp.Issuer, "sub": "bob", "aud": testidp.DefaultAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}

	for name, tok := range map[string]string{
		"expired":            idp.Mint(t, testidp.MintRequest{Subject: "bob", IssuedAt: at(-2 * time.Hour), NotBefore: at(-2 * time.Hour), Expiry: at(-time.Hour)}),
		"expired past skew":  idp.Mint(t, testidp.MintRequest{Subject: "bob", Expiry: at(-DefaultClockSkew - 5*time.Second)}),
		"not yet valid":      idp.Mint(t, testidp.MintRequest{Subject: "bob", NotBefore: at(time.Hour), Expiry: at(2 * time.Hour)}),
		"nbf past skew":      idp.Mint(t, testidp.MintRequest{Subject: "bob", NotBefore: at(DefaultClockSkew + 5*time.Second)}),
		"no exp":             idp.Mint(t, testidp.MintRequest{Subject: "bob", Claims: map[string]any{"exp": nil}}),
		"wrong audience":     idp.Mint(t, testidp.MintRequest{Subject: "bob", Audience: []string{"someone-else"}}),
		"alg none":           unsigned(t, claims),
		"tampered signature": tamperSignature(valid),
		"tampered claims":    tamperClaims(t, valid),
		"unknown key":        sign(t, rogue, "never-published", claims),
		"groups not strings": idp.Mint(t, testidp.MintRequest{Subject: "bob", Claims: map[string]any{"groups": []any{1, 2}}}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Authenticate(context.Background(), tok)
			wantCode(t, err, store.EUNAUTHORIZED, tok)
		})
	}
	if strings.Contains(logs.String(), valid) || !strings.Contains(logs.String(), "reason=expired") {
		t.Fatalf("the log should give reasons and never tokens:\n%s", logs)
	}
}

// Within the skew a token is still (or already) good: the clocks of two hosts differ.
func TestClockSkewTolerated(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	v := testVerifier(t, idp.Issuer, nil)
	now := time.Now()
	expired := now.Add(-DefaultClockSkew / 2)
	early := now.Add(DefaultClockSkew / 2)
	for name, req := range map[string]testidp.MintRequest{
		"expired within skew":  {Subject: "bob", Expiry: &expired},
		"nbf within skew":      {Subject: "bob", NotBefore: &early},
		"groups as one string": {Subject: "bob", Claims: map[string]any{"groups": "ops"}},
		"audience in a list":   {Subject: "bob", Audience: []string{"other", testidp.DefaultAudience}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := authenticate(t, v, idp.Mint(t, req)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNotMine(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	other := testidp.Start(t, testidp.Options{})
	v := testVerifier(t, idp.Issuer, nil)
	for name, tok := range map[string]string{
		"api token":     "sft_" + strings.Repeat("A", 43),
		"garbage":       "a.b.c",
		"other issuer":  other.Mint(t, testidp.MintRequest{Subject: "bob"}),
		"opaque":        "ya29.opaque-token",
		"empty":         "",
		"no iss at all": unsigned(t, map[string]any{"sub": "bob"}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Authenticate(context.Background(), tok); !errors.Is(err, store.ErrNotMine) {
				t.Fatalf("want ErrNotMine, got %v", err)
			}
		})
	}
}

// A rotation is picked up without a restart: a token naming a key not seen yet makes the
// verifier refetch the issuer's keys; a key the issuer dropped stops verifying.
func TestKeyRotation(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	v := testVerifier(t, idp.Issuer, nil)
	first := idp.Mint(t, testidp.MintRequest{Subject: "bob"})
	if _, err := authenticate(t, v, first); err != nil {
		t.Fatal(err)
	}

	idp.Rotate(t, true)
	second := idp.Mint(t, testidp.MintRequest{Subject: "bob"})
	if _, err := v.Authenticate(context.Background(), second); err != nil {
		t.Fatalf("a token signed by the new key: %v", err)
	}
	if _, err := v.Authenticate(context.Background(), first); err != nil {
		t.Fatalf("the old key is still published, its token should verify: %v", err)
	}

	newest := idp.Rotate(t, false)
	// The real flow's token must be signed by the newest key for what follows to
	// mean anything: were it signed by the dropped one, nothing would make the
	// verifier refetch. The IdP may take a moment to sign with a rotated key, so ask
	// again (bounded) until it does.
	third := idp.UserToken(t, testidp.DefaultUser, testidp.DefaultUserPassword)
	for deadline := time.Now().Add(10 * time.Second); keyID(third) != newest; {
		if time.Now().After(deadline) {
			t.Fatalf("the IdP still signs with key %q after rotating to %q", keyID(third), newest)
		}
		time.Sleep(100 * time.Millisecond)
		third = idp.UserToken(t, testidp.DefaultUser, testidp.DefaultUserPassword)
	}
	if _, err := v.Authenticate(context.Background(), third); err != nil {
		t.Fatalf("a token signed by the newest key: %v", err)
	}
	// go-oidc hands the refetched keys to the waiting verification before it stores
	// them as its cache, so a token checked in that instant still meets the old
	// cache (under -race about one run in eight). The dropped key must stop
	// verifying: asked again, bounded.
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err = v.Authenticate(context.Background(), second); err != nil || time.Now().After(deadline) {
			break
		}
	}
	wantCode(t, err, store.EUNAUTHORIZED, second)
}

// A key the issuer drops stops verifying within keyMaxAge even when no token signed
// with another key arrives to make the verifier refetch.
func TestDroppedKeyForgotten(t *testing.T) {
	defer func(d time.Duration) { keyMaxAge = d }(keyMaxAge)
	keyMaxAge = 300 * time.Millisecond
	idp := testidp.Start(t, testidp.Options{})
	v := testVerifier(t, idp.Issuer, nil)
	old := idp.Mint(t, testidp.MintRequest{Subject: "bob"})
	if _, err := authenticate(t, v, old); err != nil {
		t.Fatal(err)
	}
	idp.Rotate(t, false)
	// Only the old token is ever presented: nothing but the key's age makes the
	// verifier ask the issuer again.
	time.Sleep(2 * keyMaxAge)
	_, err := v.Authenticate(context.Background(), old)
	wantCode(t, err, store.EUNAUTHORIZED, old)
}

// An issuer that is down when the API starts does not stop it: its tokens are answered
// EUNAVAILABLE, and accepted once the issuer is up.
func TestIssuerDownAtStart(t *testing.T) {
	port := testidp.FreePort(t)
	issuer := testidp.IssuerFor(port)
	v := testVerifier(t, issuer, nil)
	early := unsigned(t, map[string]any{"iss": issuer, "sub": "bob"})
	early = strings.Replace(early, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)), base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)), 1)
	_, err := v.Authenticate(context.Background(), early)
	wantCode(t, err, store.EUNAVAILABLE, early)

	idp := testidp.Start(t, testidp.Options{Port: port})
	tok := idp.UserToken(t, testidp.DefaultUser, testidp.DefaultUserPassword)
	if _, err := authenticate(t, v, tok); err != nil {
		t.Fatal(err)
	}

	// Down again after discovery: a token with a key not in the cache cannot be checked.
	idp.Rotate(t, false)
	fresh := idp.Mint(t, testidp.MintRequest{Subject: "bob"})
	idp.Stop()
	_, err = v.Authenticate(context.Background(), fresh)
	wantCode(t, err, store.EUNAVAILABLE, fresh)
}

func TestConfigValidation(t *testing.T) {
	_, err := New(context.Background(), Config{Issuer: "http://idp.example.com", ClockSkew: time.Hour, Algorithms: []string{"RS256", "none", "HS256"}}, nil)
	var fields []string
	for _, f := range store.FieldErrors(err) {
		fields = append(fields, f.Field+"/"+f.Rule)
	}
	want := []string{"issuer/https", "audience/required", "clockSkew/range", "algorithms[1]/enum", "algorithms[2]/enum"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields %v, want %v (%v)", fields, want, err)
	}
}

func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

func sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tamperSignature(tok string) string {
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

func tamperClaims(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["groups"] = []string{"platform-admins"}
	b, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// Tokens naming made-up key ids cannot make the API hammer the issuer for keys: such a key id
// causes at most one refetch per interval.
func TestRefetchThrottled(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	var fetches atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second, Transport: countKeys{&fetches, http.DefaultTransport}}
	v := throttledVerifier(t, idp.Issuer, nil, client, time.Second)
	start := time.Now()
	if _, err := authenticate(t, v, idp.Mint(t, testidp.MintRequest{Subject: "bob"})); err != nil {
		t.Fatal(err)
	}
	if fetches.Load() == 0 {
		t.Fatal("the key fetches are not counted")
	}
	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"iss": idp.Issuer, "sub": "bob", "aud": testidp.DefaultAudience, "exp": now.Add(time.Hour).Unix()}
	const forged = 30
	for i := range forged {
		tok := sign(t, rogue, fmt.Sprintf("made-up-%d", i), claims)
		_, err := v.Authenticate(context.Background(), tok)
		wantCode(t, err, store.EUNAUTHORIZED, tok)
	}
	// One fetch for the genuine key, then at most one per started second; without the
	// throttle every forged token is a fetch.
	allowed := 2 + int64(time.Since(start)/time.Second)
	if n := fetches.Load(); n > allowed || allowed >= forged {
		t.Fatalf("%d key fetches for %d forged tokens (allowed %d)", n, forged, allowed)
	}
	// A genuine rotation is still picked up, once the interval has passed.
	idp.Rotate(t, false)
	fresh := idp.Mint(t, testidp.MintRequest{Subject: "bob"})
	for i := 0; ; i++ {
		_, err := v.Authenticate(context.Background(), fresh)
		if err == nil {
			break
		}
		if i == 40 {
			t.Fatalf("the rotated key was never picked up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type countKeys struct {
	n  *atomic.Int64
	rt http.RoundTripper
}

func (c countKeys) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/keys" {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// A provider whose sub is opaque can be read by another claim, and its groups from another.
func TestConfiguredClaims(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := newVerifier(ctx, Config{Issuer: idp.Issuer, Audience: testidp.DefaultAudience, SubjectClaim: "email", GroupsClaim: "roles"}, nil, http.DefaultClient, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := authenticate(t, v, idp.Mint(t, testidp.MintRequest{Subject: "00u1", Groups: []string{"ignored"}, Claims: map[string]any{"email": "bob@example.test", "roles": []string{"shop-b-admins"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != idp.Issuer+"#bob@example.test" || !slices.Equal(id.Groups, []string{"shop-b-admins"}) {
		t.Fatalf("identity %+v", id)
	}
	_, err = v.Authenticate(ctx, idp.Mint(t, testidp.MintRequest{Subject: "00u1"}))
	wantCode(t, err, store.EUNAUTHORIZED, "")
}
