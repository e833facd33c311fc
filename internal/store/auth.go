package store

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Role is what a principal may do with the stores of a tenant. Roles are ordered:
// each allows what the ones before it allow.
type Role string

const (
	// RoleViewer reads stores, their history, requests and status.
	RoleViewer Role = "viewer"
	// RoleEditor also creates, updates and deletes stores (a delete keeps the data).
	RoleEditor Role = "editor"
	// RoleAdmin also purges (destroys a store's data) and may override the
	// mass-deletion guard with an explicit force.
	RoleAdmin Role = "admin"
)

// Roles lists every role, weakest first.
var Roles = []Role{RoleViewer, RoleEditor, RoleAdmin}

// Allows reports whether r includes need.
func (r Role) Allows(need Role) bool {
	have, want := slices.Index(Roles, r), slices.Index(Roles, need)
	return have >= 0 && want >= 0 && have >= want
}

// AllTenants, as a grant's tenant, grants the role in every tenant.
const AllTenants = "*"

// DefaultTenant is the tenant of a store that has none in its files (created before
// tenants existed, or pushed by hand) unless the operator configures another.
const DefaultTenant = "default"

// Owner is the tenant that owns a store whose files name tenant: that one, or def
// (the configured default tenant) when they name none. It is the one rule by
// which both the fleet's count (Counter) and the repository's quota check at
// commit time (FolderTenant) attribute a store, so that they never disagree.
func Owner(tenant, def string) string {
	if tenant == "" {
		return def
	}
	return tenant
}

// FolderTenant reads the tenant that owns the store in files (a store folder,
// paths from the repository root) as the fleet's count does: the tenant Parse
// finds (Renderer.Tenant), else def. An error means the folder does not parse;
// the count leaves such a folder out.
func FolderTenant(r Renderer, def string, files []File) (string, error) {
	t, err := r.Tenant(files)
	if err != nil {
		return "", err
	}
	return Owner(t, def), nil
}

// AuthMethod names how a principal proved who it is.
type AuthMethod string

const (
	AuthOIDC       AuthMethod = "oidc"       // a JWT from the configured OpenID provider
	AuthToken      AuthMethod = "token"      // an API token (only its hash is stored)
	AuthKubernetes AuthMethod = "kubernetes" // a Kubernetes token, checked by TokenReview
	AuthNone       AuthMethod = "none"       // authentication is off (make run on loopback)
)

// Identity is what an Authenticator established from a credential: who, and the
// groups the credential's issuer says the subject is in. It grants nothing by itself
// except where the credential names its own grants (an API token carries its tenant
// and role); the access policy maps the rest to grants.
type Identity struct {
	// Subject is the audit identity: "<issuer>#<sub>" for OIDC, "token:<name>" for an
	// API token, the Kubernetes user name (system:serviceaccount:<ns>:<name>) for
	// TokenReview. It is what the Actor trailer records.
	Subject string
	Method  AuthMethod
	Groups  []string
	// Grants the credential itself carries (tenant → role); nil for OIDC and
	// Kubernetes identities, whose grants come from the policy's rules.
	Grants map[string]Role
}

// Authenticator checks one kind of bearer credential. internal/oidcauth,
// internal/apitoken and internal/kube (TokenReview) implement it.
type Authenticator interface {
	// Authenticate returns the identity the token proves. It returns ErrNotMine
	// (quickly, without a network call) when the token is not of its kind, so the
	// next authenticator may try; an error with code EUNAUTHORIZED when the token is
	// of its kind but not valid (expired, bad signature, revoked, ...); EUNAVAILABLE
	// when it cannot tell now (the issuer or the API server does not answer).
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// ErrNotMine: the credential is not of the kind an Authenticator checks.
var ErrNotMine = errors.New("credential not of this kind")

// Principal is who asks, with what it may do: an Identity after the access policy
// mapped it to grants.
type Principal struct {
	Subject string
	Method  AuthMethod
	// Grants maps tenant → role; the tenant AllTenants grants the role everywhere.
	Grants map[string]Role
	// ActAs: the principal may name another actor (X-Actor) it acts for; both are
	// recorded.
	ActAs bool
}

// RoleIn returns the strongest role p has in tenant ("" when none).
func (p Principal) RoleIn(tenant string) Role {
	best := Role("")
	for _, t := range []string{tenant, AllTenants} {
		if r, ok := p.Grants[t]; ok && (best == "" || r.Allows(best)) {
			best = r
		}
	}
	return best
}

// Can reports whether p has at least role need in tenant.
func (p Principal) Can(tenant string, need Role) bool {
	r := p.RoleIn(tenant)
	return r != "" && r.Allows(need)
}

// Sees reports whether p may see tenant's stores at all. A store p cannot see is
// answered as not found, never as forbidden, so that its existence does not leak.
func (p Principal) Sees(tenant string) bool { return p.RoleIn(tenant) != "" }

// Counter answers the access policy's questions about the fleet as a whole: the
// per-tenant store quota and the mass-deletion guard. internal/fleet implements it
// from the fleet repository, so that every replica gives the same answer.
type Counter interface {
	// Stores returns how many stores tenant has, active or retained (a deleted
	// store still holds its data, and its name).
	Stores(ctx context.Context, tenant string) (int, error)
	// Removals returns how many deletes and purges (each step counted once per
	// request) were committed to the fleet since t.
	Removals(ctx context.Context, since time.Time) (int, error)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p: who asks, for every call of the lifecycle
// (reads take no Meta, and must be filtered too).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries; nil when authentication is off
// (then nothing is restricted, except the mass-deletion guard).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
