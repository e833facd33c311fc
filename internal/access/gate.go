package access

import (
	"context"
	"errors"
	"strings"

	"github.com/storefleet/storefleet/internal/store"
)

// Gate turns a bearer token into a principal: each authenticator in turn, then the
// policy.
type Gate struct {
	policy *Policy
	auths  []store.Authenticator
}

// NewGate returns a Gate trying auths in the given order. The order matters only for
// cost: every authenticator must recognise its own kind of token without a network
// call (store.ErrNotMine), so the cheap ones (API tokens) go first.
func NewGate(p *Policy, auths ...store.Authenticator) *Gate {
	return &Gate{policy: p, auths: nonNil(auths)}
}

func nonNil(a []store.Authenticator) []store.Authenticator {
	out := make([]store.Authenticator, 0, len(a))
	for _, x := range a {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// Principal authenticates token. It fails with EUNAUTHORIZED when no authenticator
// claims the token or the one that does finds it invalid, and with EUNAVAILABLE
// when that one cannot tell now (retry later). Errors never carry the token.
func (g *Gate) Principal(ctx context.Context, token string) (*store.Principal, error) {
	if token == "" {
		return nil, store.Errorf(store.EUNAUTHORIZED, "a bearer token is required")
	}
	for _, a := range g.auths {
		id, err := a.Authenticate(ctx, token)
		if errors.Is(err, store.ErrNotMine) {
			continue
		}
		if err != nil {
			return nil, safeError(err, token)
		}
		if id.Subject == "" {
			// An identity without a subject could not be audited: refuse it rather
			// than commit changes nobody can be held to.
			return nil, store.Errorf(store.EUNAUTHORIZED, "the credential names no subject")
		}
		p := g.policy.Principal(id)
		return &p, nil
	}
	return nil, store.Errorf(store.EUNAUTHORIZED, "the bearer token is not of a kind this server accepts")
}

// safeError keeps an authenticator's verdict and, when it cannot have been told the
// token, its message; anything else is replaced, since the message reaches the
// client and the logs.
func safeError(err error, token string) error {
	code := store.ErrorCode(err)
	msg := store.ErrorMessage(err)
	switch code {
	case store.EUNAUTHORIZED:
		if leaks(msg, token) {
			msg = "the bearer token is not valid"
		}
	case store.EUNAVAILABLE:
		if leaks(msg, token) {
			msg = "the credential cannot be checked now"
		}
	default:
		// Not a verdict the port allows: nobody vouched for the token, and the
		// error's text is not meant for a client.
		code, msg = store.EUNAVAILABLE, "the credential cannot be checked now"
	}
	return &store.Error{Code: code, Message: msg, Cause: store.ErrorCause(err)}
}

// leaks reports whether msg holds the token or a piece of it long enough to matter
// (a JWT's payload or signature echoed back, say).
func leaks(msg, token string) bool {
	const piece = 8
	if len(token) <= piece {
		return strings.Contains(msg, token)
	}
	for i := 0; i+piece <= len(token); i++ {
		if strings.Contains(msg, token[i:i+piece]) {
			return true
		}
	}
	return false
}
