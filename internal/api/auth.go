package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Authenticator turns a bearer token into the principal it proves (serve passes the
// access policy's Gate). Errors carry the store's codes: EUNAUTHORIZED when the token
// is not valid, EUNAVAILABLE when nobody can tell now (the issuer is down).
type Authenticator func(ctx context.Context, token string) (*store.Principal, error)

// Realm is the realm every 401's challenge names.
const Realm = "storefleet"

// PrincipalFrom returns who asks, as authentication established it; nil when
// authentication is off.
func PrincipalFrom(ctx context.Context) *store.Principal { return store.PrincipalFrom(ctx) }

// bearer extracts the token of an Authorization header. ok is false when the header
// is there but is not a bearer credential (RFC 6750 2.1: scheme case-insensitive,
// one space, a token68).
func bearer(r *http.Request) (token string, present, ok bool) {
	vs := r.Header.Values("Authorization")
	if len(vs) == 0 {
		return "", false, false
	}
	if len(vs) != 1 {
		return "", true, false
	}
	scheme, tok, found := strings.Cut(vs[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", true, false
	}
	return tok, true, true
}

// guard is the gate of /api/v1: it authenticates the bearer token, puts the
// principal in the context, and spends the caller's rate budget. The budget is spent
// before a failed authentication is answered, so guessing tokens costs the guesser's
// address its budget like any other request.
func guard(auth Authenticator, lim *limiter, obs Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var (
				p       *store.Principal
				failure *Problem
				retry   bool
			)
			if auth != nil {
				var result string
				p, failure, retry, result = authenticate(r, auth)
				method := ""
				if p != nil {
					method = string(p.Method)
				}
				obs.Authentication(method, result)
			}
			if lim != nil {
				if budget := lim.refuse(w, r, p); budget != "" {
					obs.RateLimited(budget)
					return
				}
			}
			if failure != nil {
				if retry {
					w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
				}
				WriteProblem(w, r, failure)
				return
			}
			if p == nil {
				next.ServeHTTP(w, r)
				return
			}
			if c := callerFrom(r.Context()); c != nil {
				c.principal = p
			}
			next.ServeHTTP(w, r.WithContext(store.WithPrincipal(r.Context(), p)))
		})
	}
}

// authenticate checks r's bearer token. It returns the principal, or the problem to
// answer and whether the client should retry later (503); and the result as the
// authentications metric counts it.
func authenticate(r *http.Request, auth Authenticator) (*store.Principal, *Problem, bool, string) {
	tok, present, ok := bearer(r)
	if !present {
		return nil, unauthorized("", "this route needs Authorization: Bearer <token> (an OpenID Connect access token or an API token)"), false, "missing"
	}
	if !ok {
		return nil, unauthorized("invalid_request", "the Authorization header must be given once, as Bearer <token>"), false, "malformed"
	}
	p, err := auth(r.Context(), tok)
	switch {
	case err == nil && p != nil:
		return p, nil, false, "ok"
	case store.ErrorCode(err) == store.EUNAVAILABLE:
		return nil, newProblem(http.StatusServiceUnavailable, "auth-unavailable", "Authentication unavailable",
			"the token cannot be checked now (its issuer does not answer); retry later"), true, "unavailable"
	case err == nil, errors.Is(err, store.ErrNotMine):
		return nil, unauthorized("invalid_token", "the token is of no kind this server accepts"), false, "invalid"
	case store.ErrorCode(err) == store.EUNAUTHORIZED:
		// The authenticators' messages are written to be shown and name the rule the
		// token broke (expired, audience, ...), never the token.
		return nil, unauthorized("invalid_token", "the token is not valid: "+store.ErrorMessage(err)), false, "invalid"
	}
	// Anything else is not a verdict on the token; refusing is the only safe answer,
	// and the cause is not the client's to read.
	return nil, unauthorized("invalid_token", "the token could not be verified"), false, "invalid"
}

// unauthorized is a 401 with its RFC 6750 challenge. errCode is empty when no token
// was given: then the challenge only says how to authenticate.
func unauthorized(errCode, detail string) *Problem {
	p := newProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
	p.challenge = `Bearer realm="` + Realm + `"`
	if errCode != "" {
		p.challenge += `, error="` + errCode + `"`
	}
	return p
}

// actAsProblem refuses an X-Actor from a principal that may not act for others.
// The access policy refuses it too; answering here keeps the claim from going any
// further than the HTTP layer.
func actAsProblem() *Problem {
	return newProblem(http.StatusForbidden, "forbidden", "Forbidden",
		"X-Actor names someone to act for, and this principal may not act for others",
		FieldError{Field: "X-Actor", Rule: "actAs", Detail: "only principals allowed to act for others may send it"})
}
