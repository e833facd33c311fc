package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// notFound: op answers not-found storage errors as invalid requests, not server errors.
type notFound struct{ what string }

func (e notFound) Error() string { return e.what + " not found" }
func (notFound) IsNotFound()     {}

// signingKey is one RSA key; the JWKS publishes its public half under kid.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: randomID(), key: k}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the JWKS view of a signing key.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// authRequest is one authorization-code flow in progress.
type authRequest struct {
	id          string
	clientID    string
	redirectURI string
	state       string
	nonce       string
	scopes      []string
	audience    []string
	respType    oidc.ResponseType
	respMode    oidc.ResponseMode
	challenge   *oidc.CodeChallenge
	user        string
	authTime    time.Time
	done        bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.user }
func (a *authRequest) Done() bool                            { return a.done }

// ccRequest is a client_credentials token request: the client is its own subject.
type ccRequest struct {
	clientID string
	audience []string
	scopes   []string
}

func (c ccRequest) GetSubject() string    { return c.clientID }
func (c ccRequest) GetAudience() []string { return c.audience }
func (c ccRequest) GetScopes() []string   { return c.scopes }

// storage keeps everything in memory: users, clients, flows in progress, the keys.
type storage struct {
	cfg Config

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string // code → request id
	current  *signingKey
	previous []*signingKey // still published after a rotation that keeps them
}

func newStorage(cfg Config) (*storage, error) {
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	return &storage{cfg: cfg, requests: map[string]*authRequest{}, codes: map[string]string{}, current: k}, nil
}

// rotate makes a new current key. keep publishes the old one still, as an IdP does during a
// rollover; without it tokens signed by the old key stop verifying at once.
func (s *storage) rotate(keep bool) (string, error) {
	k, err := newSigningKey()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keep {
		s.previous = append(s.previous, s.current)
	} else {
		s.previous = nil
	}
	s.current = k
	return k.id, nil
}

func (s *storage) user(name string) (User, bool) {
	for _, u := range s.cfg.Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

func (s *storage) client(id string) (Client, bool) {
	for _, c := range s.cfg.Clients {
		if c.ID == id {
			return c, true
		}
	}
	return Client{}, false
}

// checkLogin is the login form's check; it completes the request on success.
func (s *storage) checkLogin(name, password, requestID string) error {
	u, ok := s.user(name)
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return errors.New("wrong user name or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[requestID]
	if !ok {
		return errors.New("login request expired")
	}
	r.user, r.done, r.authTime = u.Name, true, time.Now()
	return nil
}

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	r := &authRequest{
		id: randomID(), clientID: req.ClientID, redirectURI: req.RedirectURI, state: req.State,
		nonce: req.Nonce, scopes: req.Scopes, respType: req.ResponseType, respMode: req.ResponseMode,
		audience: []string{s.cfg.Audience, req.ClientID},
	}
	if req.CodeChallenge != "" {
		r.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	s.requests[r.id] = r
	s.mu.Unlock()
	return r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.requests[id]; ok {
		return r, nil
	}
	return nil, notFound{"auth request"}
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, notFound{"code"}
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return randomID(), time.Now().Add(time.Duration(s.cfg.TokenLifetime)), nil
}

var errUnsupported = errors.New("not supported by the test IdP")

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errUnsupported
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []op.Key{publicKey{s.current}}
	for _, k := range s.previous {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, notFound{"client"}
	}
	return opClient{c}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.client(id)
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("invalid client credentials")
	}
	return nil
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return nil, err
	}
	c, _ := s.client(id)
	return opClient{c}, nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return ccRequest{clientID: id, audience: []string{s.cfg.Audience}, scopes: scopes}, nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	return s.fillUserinfo(info, req.GetSubject())
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, _, subject, _ string) error {
	return s.fillUserinfo(info, subject)
}

func (s *storage) fillUserinfo(info *oidc.UserInfo, subject string) error {
	u, ok := s.user(subject)
	if !ok {
		return notFound{"user"}
	}
	info.Subject = u.Name
	info.PreferredUsername = u.Name
	if u.Email != "" {
		info.Email, info.EmailVerified = u.Email, true
	}
	info.AppendClaims("groups", u.Groups)
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}

// GetPrivateClaimsFromRequest puts groups (and email) in the access token, which is what the
// API's access policy maps to tenants and roles.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	return s.claimsOf(req.GetSubject()), nil
}

func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	return s.claimsOf(userID), nil
}

func (s *storage) claimsOf(subject string) map[string]any {
	if u, ok := s.user(subject); ok {
		claims := map[string]any{"groups": nonNil(u.Groups)}
		if u.Email != "" {
			claims["email"] = u.Email
		}
		return claims
	}
	if c, ok := s.client(subject); ok {
		return map[string]any{"groups": nonNil(c.Groups)}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// opClient adapts a configured client to op.Client.
type opClient struct{ c Client }

func (c opClient) GetID() string                    { return c.c.ID }
func (c opClient) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c opClient) PostLogoutRedirectURIs() []string { return nil }
func (c opClient) ApplicationType() op.ApplicationType {
	if c.c.Secret == "" {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c opClient) AuthMethod() oidc.AuthMethod {
	if c.c.Secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c opClient) GrantTypes() []oidc.GrantType {
	if c.c.Secret == "" {
		return []oidc.GrantType{oidc.GrantTypeCode}
	}
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeClientCredentials}
}
func (c opClient) LoginURL(id string) string           { return "/login?authRequestID=" + id }
func (c opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c opClient) IDTokenLifetime() time.Duration      { return 5 * time.Minute }

// DevMode lets loopback http redirect URIs through, which is all a test IdP ever redirects to.
func (c opClient) DevMode() bool { return true }
func (c opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) IsScopeAllowed(scope string) bool {
	return slices.Contains([]string{"groups", "email"}, scope)
}
func (c opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c opClient) ClockSkew() time.Duration             { return 0 }
