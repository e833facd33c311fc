// Package access is Storefleet's access policy: who may do what with which stores.
//
// It owns the access configuration file (which authenticators are on, the rules that
// map subjects and groups to tenants and roles, the limits), the mapping of an
// authenticated store.Identity to a store.Principal, the chain of authenticators a
// bearer token goes through (Gate), and the store.Service decorator that enforces
// roles, tenant visibility, the per-tenant quota and the mass-deletion guard.
//
// It knows no SDK: the authenticators (OIDC, API tokens, TokenReview) are adapters
// elsewhere, seen here only through the store.Authenticator port, so the policy
// works the same under `make run` as in a cluster.
package access
