package kube

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"

	"github.com/storefleet/storefleet/internal/store"
)

const (
	// reviewTTL bounds how long a review's answer is reused: long enough that a burst of
	// requests with one token costs one review, short enough that a deleted ServiceAccount
	// or a revoked token stops working within seconds.
	reviewTTL = 10 * time.Second
	// reviewCacheSize bounds the memory a flood of distinct tokens can take.
	reviewCacheSize = 4096
)

// TokenReviewer authenticates Kubernetes tokens (a workload's ServiceAccount token) by asking
// the API server, through the TokenReview API, who they belong to. It implements
// store.Authenticator.
type TokenReviewer struct {
	reviews   authnclient.TokenReviewInterface
	audiences []string
	log       *slog.Logger
	now       func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]review
	// inflight shares one review among the requests that bring the same token at the same
	// time, so that a burst of a new token is one review, not one per request.
	inflight map[[32]byte]*pending
}

type pending struct {
	done chan struct{}
	id   store.Identity
	err  error
}

type review struct {
	id      store.Identity
	err     error // a refusal (EUNAUTHORIZED) is cached too, so a bad token cannot flood the API server
	expires time.Time
}

// NewTokenReviewer checks tokens with the API server cfg reaches. audiences are the ones the
// tokens must be issued for (a TokenRequest's audiences, a projected volume's audience);
// empty means the API server's own, which any token of the cluster carries — name one.
func NewTokenReviewer(cfg *rest.Config, audiences []string, log *slog.Logger) (*TokenReviewer, error) {
	c := rest.CopyConfig(cfg)
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	client, err := authnclient.NewForConfig(c)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TokenReviewer{
		reviews: client.TokenReviews(), audiences: slices.Clone(audiences), log: log,
		now: time.Now, cache: map[[32]byte]review{}, inflight: map[[32]byte]*pending{},
	}, nil
}

// jwtExpiry reports whether token is shaped like a JWT (three base64url parts, a JSON header
// and payload) and its unverified exp, if any. Kubernetes tokens are JWTs; anything else is
// not this authenticator's and costs no review.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return time.Time{}, false
	}
	var header map[string]any
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	_, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return time.Time{}, false
	}
	if claims.Exp == nil {
		return time.Time{}, true
	}
	return time.Unix(int64(*claims.Exp), 0), true
}

var errTokenRefused = store.Errorf(store.EUNAUTHORIZED, "The bearer token is not valid.")

// Authenticate implements store.Authenticator.
func (r *TokenReviewer) Authenticate(ctx context.Context, token string) (store.Identity, error) {
	exp, ok := jwtExpiry(token)
	if !ok {
		return store.Identity{}, store.ErrNotMine
	}
	key := sha256.Sum256([]byte(token))
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[key]; ok && now.Before(c.expires) {
		r.mu.Unlock()
		return c.id, c.err
	}
	if p, ok := r.inflight[key]; ok {
		r.mu.Unlock()
		select {
		case <-p.done:
			return p.id, p.err
		case <-ctx.Done():
			return store.Identity{}, store.Errorf(store.EUNAVAILABLE, "The Kubernetes API server cannot check the token now; try again later.")
		}
	}
	p := &pending{done: make(chan struct{})}
	r.inflight[key] = p
	r.mu.Unlock()
	p.id, p.err = r.review(ctx, token, key, exp, now)
	r.mu.Lock()
	delete(r.inflight, key)
	r.mu.Unlock()
	close(p.done)
	return p.id, p.err
}

func (r *TokenReviewer) review(ctx context.Context, token string, key [32]byte, exp, now time.Time) (store.Identity, error) {
	res, err := r.reviews.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: r.audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		// Whatever went wrong (no connection, a timeout, our own credentials or RBAC), it
		// says nothing about the token: the caller may retry.
		r.log.Warn("TokenReview failed", "err", err)
		return store.Identity{}, store.Errorf(store.EUNAVAILABLE, "The Kubernetes API server cannot check the token now; try again later.")
	}
	var id store.Identity
	switch st := res.Status; {
	case !st.Authenticated:
		r.log.Info("Kubernetes token refused", "reason", st.Error)
		err = errTokenRefused
	case len(r.audiences) > 0 && !overlaps(st.Audiences, r.audiences):
		// An API server that does not support audiences ignores them and answers for its
		// own: refuse rather than accept a token minted for someone else.
		r.log.Info("Kubernetes token refused", "reason", fmt.Sprintf("audiences %v, want one of %v", st.Audiences, r.audiences))
		err = errTokenRefused
	default:
		id = store.Identity{Subject: st.User.Username, Method: store.AuthKubernetes, Groups: slices.Clone(st.User.Groups)}
	}
	expires := now.Add(reviewTTL)
	if err == nil && !exp.IsZero() && exp.Before(expires) {
		expires = exp // never reuse an acceptance past the token's own expiry
	}
	r.remember(key, review{id: id, err: err, expires: expires}, now)
	return id, err
}

func (r *TokenReviewer) remember(key [32]byte, v review, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= reviewCacheSize {
		for k, c := range r.cache {
			if !now.Before(c.expires) {
				delete(r.cache, k)
			}
		}
		// Still full of live entries: drop arbitrary ones (map order is random); a
		// dropped entry only costs a review.
		for k := range r.cache {
			if len(r.cache) < reviewCacheSize {
				break
			}
			delete(r.cache, k)
		}
	}
	r.cache[key] = v
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

var _ store.Authenticator = (*TokenReviewer)(nil)
