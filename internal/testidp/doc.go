// Package testidp owns the OpenID provider the tests (and `make run`, for a developer who wants
// real logins) authenticate against: an in-memory identity provider on zitadel's op package that
// serves discovery, JWKS, a login page, the authorization-code flow with PKCE and client
// credentials, and issues RS256 JWT access tokens with aud and groups. Start runs it as a real
// process from tests. It is never imported by product code: the API only ever sees it over HTTP,
// as it would see any other issuer.
package testidp
