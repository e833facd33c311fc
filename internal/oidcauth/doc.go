// Package oidcauth owns checking bearer JWTs from the configured OpenID provider: discovery
// (retried in the background, so an issuer that is down never stops the API from starting),
// the signature against the issuer's published keys (refetched when a token names a key not
// seen yet, so a key rotation needs no restart), the audience, the times with a bounded clock
// skew and the accepted algorithms. It is the only importer of github.com/coreos/go-oidc.
package oidcauth
