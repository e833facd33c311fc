package oidcauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/storefleet/storefleet/internal/store"
)

const (
	// DefaultClockSkew tolerates the drift of two NTP-synchronised clocks with room to spare.
	DefaultClockSkew = 30 * time.Second
	// MaxClockSkew: past this an expired token would stay usable long enough to matter.
	MaxClockSkew = 5 * time.Minute
)

// DefaultAlgorithms are what common providers sign with; others must be asked for.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// known lists the asymmetric algorithms go-oidc verifies. HS* is left out on purpose: a
// shared-secret signature would let anyone who holds the secret (every relying party) mint
// tokens, and "none" is no signature at all.
var known = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// Config says which issuer's tokens are accepted and how they are read.
type Config struct {
	Issuer     string
	Audience   string
	ClockSkew  time.Duration // 0 = DefaultClockSkew
	Algorithms []string      // nil = DefaultAlgorithms
	// SubjectClaim names the claim that identifies the subject ("sub" when empty); a
	// provider whose sub is an opaque number may prefer "email" or "preferred_username".
	SubjectClaim string
	// GroupsClaim names the claim holding the groups ("groups" when empty); a string or a
	// list of strings.
	GroupsClaim string
}

// Validate fills the defaults and reports every problem, each naming its field.
func (c *Config) Validate() error {
	var fields []store.FieldError
	add := func(field, rule, msg string) {
		fields = append(fields, store.FieldError{Field: field, Rule: rule, Message: msg})
	}
	if u, err := url.Parse(c.Issuer); c.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("issuer", "url", "the issuer must be an absolute http(s) URL")
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		add("issuer", "https", "an issuer other than a loopback test issuer must use https")
	}
	if c.Audience == "" {
		add("audience", "required", "the audience the tokens must be issued for is required")
	}
	switch {
	case c.ClockSkew == 0:
		c.ClockSkew = DefaultClockSkew
	case c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew:
		add("clockSkew", "range", fmt.Sprintf("the clock skew must be between 0 and %s", MaxClockSkew))
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	for i, a := range c.Algorithms {
		if !slices.Contains(known, a) {
			add(fmt.Sprintf("algorithms[%d]", i), "enum", fmt.Sprintf("%q is not an accepted signature algorithm (one of %s)", a, strings.Join(known, ", ")))
		}
	}
	if c.SubjectClaim == "" {
		c.SubjectClaim = "sub"
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if len(fields) > 0 {
		return &store.Error{Code: store.EINVALID, Message: "invalid OIDC configuration", Fields: fields}
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

// Verifier implements store.Authenticator for the configured issuer's JWTs.
type Verifier struct {
	cfg      Config
	log      *slog.Logger
	verifier atomic.Pointer[oidc.IDTokenVerifier]
	retry    chan struct{}
	now      func() time.Time
	// trying is set while a discovery attempt is in flight, and discovered is
	// closed once one succeeded: a token that arrives meanwhile (the first requests
	// after a start) waits for it briefly rather than being told to come back.
	trying     atomic.Bool
	discovered chan struct{}
}

// discoveryWait bounds how long a token waits for a discovery attempt in flight.
const discoveryWait = 2 * time.Second

// New returns at once. Discovery runs in the background until it succeeds, retried with
// back-off (1 s doubling to 30 s, or sooner when a token arrives); until then Authenticate
// answers EUNAVAILABLE for this issuer's tokens. The background work ends with ctx.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Verifier, error) {
	return newVerifier(ctx, cfg, log, &http.Client{Timeout: 10 * time.Second}, time.Second)
}

// newVerifier is New with the HTTP client and the refetch interval given, for tests.
func newVerifier(ctx context.Context, cfg Config, log *slog.Logger, client *http.Client, refetchEvery time.Duration) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg, log: log.With("issuer", cfg.Issuer), retry: make(chan struct{}, 1), now: time.Now, discovered: make(chan struct{})}
	v.trying.Store(true) // the first attempt starts now
	go v.discover(ctx, client, refetchEvery)
	return v, nil
}

// Ready reports whether discovery has succeeded.
func (v *Verifier) Ready() bool { return v.verifier.Load() != nil }

func (v *Verifier) discover(ctx context.Context, client *http.Client, refetchEvery time.Duration) {
	// The key set outlives any one request: its fetches must not be cancelled with the
	// request that triggered them, and its client needs a timeout of its own.
	keysCtx := oidc.ClientContext(context.WithoutCancel(ctx), client)
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		v.trying.Store(true)
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), 10*time.Second)
		p, err := oidc.NewProvider(dctx, v.cfg.Issuer)
		var meta struct {
			JWKS string `json:"jwks_uri"`
		}
		if err == nil {
			err = p.Claims(&meta)
		}
		cancel()
		if err == nil && meta.JWKS == "" {
			err = errors.New("discovery document has no jwks_uri")
		}
		if err == nil {
			jwks := meta.JWKS
			keys := &keySet{
				fresh:  func() *oidc.RemoteKeySet { return oidc.NewRemoteKeySet(keysCtx, jwks) },
				every:  refetchEvery,
				maxAge: keyMaxAge,
			}
			keys.renew(time.Now())
			v.verifier.Store(oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
				ClientID:             v.cfg.Audience,
				SupportedSigningAlgs: v.cfg.Algorithms,
				// Expiry and nbf are checked here with our bounded skew: go-oidc allows
				// none on exp and a fixed 5 minutes on nbf.
				SkipExpiryCheck: true,
			}))
			v.trying.Store(false)
			close(v.discovered)
			v.log.Info("oidc discovery done", "attempts", attempt)
			return
		}
		v.trying.Store(false)
		v.log.Warn("oidc discovery failed; tokens from this issuer are refused as unavailable until it succeeds", "attempt", attempt, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-v.retry:
			t.Stop()
			// A token is waiting: try now, but never more than once a second, so a
			// stream of tokens cannot turn into a stream of discovery requests.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// keySet wraps go-oidc's remote key set for two things it does not do.
//
// It records whether a verification failed because the keys could not be fetched, which is
// the issuer's fault (EUNAVAILABLE), not the token's. go-oidc reports that failure with %v
// further up, so it can only be told apart here, where it still wraps the cause.
//
// It bounds the refetches that tokens can cause. go-oidc refetches the issuer's keys for
// every token whose key id it has not cached, so anyone could make the API hammer the issuer
// with tokens naming made-up key ids. Here a key id that has not verified a token yet may
// cause a refetch at most once per interval; between, such tokens are refused. A rotation is
// still picked up by the first token signed with the new key.
//
// And it forgets every key after maxAge. go-oidc keeps a key for as long as the process runs,
// refetching only for a key id it does not know, so a key the issuer dropped (it leaked) would
// go on verifying tokens until a token signed with another key happened to arrive.
type keySet struct {
	fresh  func() *oidc.RemoteKeySet
	every  time.Duration
	maxAge time.Duration

	mu          sync.Mutex
	remote      *oidc.RemoteKeySet
	born        time.Time
	known       map[string]bool // key ids that verified a token (bounded by the issuer's real keys)
	lastUnknown time.Time
}

type fetchFailure struct{ err error }

type fetchKey struct{}

var errRefetchThrottled = errors.New("unknown key id, and the keys were refetched less than the minimum interval ago")

// keyMaxAge is how long keys are trusted without asking the issuer again.
var keyMaxAge = 10 * time.Minute

// renew starts over with no key cached; k.mu is held or k not shared yet.
func (k *keySet) renew(now time.Time) {
	k.remote, k.born, k.known = k.fresh(), now, map[string]bool{}
}

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	kid := keyID(jwt)
	k.mu.Lock()
	if now := time.Now(); now.Sub(k.born) > k.maxAge {
		k.renew(now)
	}
	remote := k.remote
	if !k.known[kid] {
		now := time.Now()
		if now.Sub(k.lastUnknown) < k.every {
			k.mu.Unlock()
			return nil, errRefetchThrottled
		}
		k.lastUnknown = now
	}
	k.mu.Unlock()
	payload, err := remote.VerifySignature(ctx, jwt)
	k.mu.Lock()
	if err == nil {
		k.known[kid] = true
	} else {
		// A key the issuer has dropped is unknown again, so replaying an old token
		// cannot cause a refetch each time either.
		delete(k.known, kid)
	}
	k.mu.Unlock()
	if err != nil && strings.HasPrefix(err.Error(), "fetching keys") {
		if f, ok := ctx.Value(fetchKey{}).(*fetchFailure); ok {
			f.err = err
		}
	}
	return payload, err
}

func keyID(jwt string) string {
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

// unverified is what is read from a token before its signature is checked: only enough to
// decide, without the network, whether the token is this issuer's at all.
type unverified struct {
	alg string
	iss string
}

func peek(token string) (unverified, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return unverified{}, false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	var c struct {
		Iss any `json:"iss"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return unverified{}, false
	}
	iss, _ := c.Iss.(string)
	return unverified{alg: h.Alg, iss: iss}, true
}

func (v *Verifier) refuse(reason string, args ...any) error {
	v.log.Info("oidc token refused", append([]any{"reason", reason}, args...)...)
	// The message is the same for every reason: it is shown to whoever sent the token, and
	// telling them which check failed helps an attacker more than a user.
	return store.Errorf(store.EUNAUTHORIZED, "The bearer token is not valid.")
}

// Authenticate implements store.Authenticator.
func (v *Verifier) Authenticate(ctx context.Context, token string) (store.Identity, error) {
	u, ok := peek(token)
	if !ok || u.iss != v.cfg.Issuer {
		return store.Identity{}, store.ErrNotMine
	}
	if !slices.Contains(v.cfg.Algorithms, u.alg) {
		return store.Identity{}, v.refuse("algorithm not accepted", "alg", u.alg)
	}
	verifier := v.verifier.Load()
	if verifier == nil && v.trying.Load() {
		t := time.NewTimer(discoveryWait)
		select {
		case <-v.discovered:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		verifier = v.verifier.Load()
	}
	if verifier == nil {
		select {
		case v.retry <- struct{}{}:
		default:
		}
		return store.Identity{}, store.Errorf(store.EUNAVAILABLE, "The identity provider cannot be reached; try again later.")
	}
	fetch := &fetchFailure{}
	idt, err := verifier.Verify(context.WithValue(ctx, fetchKey{}, fetch), token)
	if err != nil {
		if fetch.err != nil {
			v.log.Warn("oidc keys could not be fetched", "err", fetch.err)
			return store.Identity{}, store.Errorf(store.EUNAVAILABLE, "The identity provider cannot be reached; try again later.")
		}
		return store.Identity{}, v.refuse(err.Error())
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return store.Identity{}, v.refuse("claims not readable", "err", err)
	}
	now := v.now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return store.Identity{}, v.refuse("no exp claim")
	}
	if !now.Before(exp.Add(v.cfg.ClockSkew)) {
		return store.Identity{}, v.refuse("expired", "exp", exp)
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Add(v.cfg.ClockSkew).Before(nbf) {
		return store.Identity{}, v.refuse("not yet valid", "nbf", nbf)
	}
	sub, _ := claims[v.cfg.SubjectClaim].(string)
	if sub == "" {
		return store.Identity{}, v.refuse("no subject", "claim", v.cfg.SubjectClaim)
	}
	groups, ok := stringList(claims[v.cfg.GroupsClaim])
	if !ok {
		return store.Identity{}, v.refuse("groups claim is neither a string nor a list of strings", "claim", v.cfg.GroupsClaim)
	}
	return store.Identity{Subject: v.cfg.Issuer + "#" + sub, Method: store.AuthOIDC, Groups: groups}, nil
}

func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

func stringList(v any) ([]string, bool) {
	switch g := v.(type) {
	case nil:
		return nil, true
	case string:
		if g == "" {
			return nil, true
		}
		return []string{g}, true
	case []any:
		out := make([]string, 0, len(g))
		for _, e := range g {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

var _ store.Authenticator = (*Verifier)(nil)
