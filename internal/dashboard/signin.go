package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// SignIn is the dashboard's OpenID Connect sign-in: the authorization-code flow with
// PKCE as a public client. The server side keeps the access token; the browser holds
// only an HttpOnly, SameSite=Strict session cookie. Kept server-side, a token cannot
// be read by a script that found its way into the page, and it never sits in the
// browser's storage; the price is a session table in this process (a restart signs
// everyone out, and each replica has its own sessions: sign-in is per replica).
type SignIn struct {
	// Issuer is the OpenID provider (the same one the API verifies tokens of).
	Issuer string
	// ClientID is the public client registered for the dashboard.
	ClientID string
	// RedirectURL is the callback registered for the client; its path is served here.
	RedirectURL string
	// Client talks to the provider; nil = a client with a 10 s timeout.
	Client *http.Client

	once      sync.Once
	authz     string
	token     string
	mu        sync.Mutex
	pending   map[string]pendingLogin // by state
	sessions  map[string]session      // by session id
	callbackP string
}

type pendingLogin struct {
	verifier string
	expires  time.Time
}

type session struct {
	token   string
	expires time.Time
}

const (
	sessionCookie = "storefleet_session"
	stateCookie   = "storefleet_login"
	// CSRFHeader must be on every write the session authorises. A page of another
	// origin cannot add a custom header to a request here without a CORS preflight,
	// which this server never grants, so the header proves the request is the page's.
	CSRFHeader = "X-Storefleet-Csrf"
	// loginWindow bounds how long a started sign-in may take at the provider.
	loginWindow = 10 * time.Minute
	// maxPending bounds the sign-ins in flight, so unauthenticated /auth/login calls
	// cannot grow memory without limit.
	maxPending = 10000
)

func (s *SignIn) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// discover reads the provider's endpoints once; a failure is retried at the next
// sign-in rather than remembered for the life of the process.
func (s *SignIn) discover(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authz != "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.Issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return fmt.Errorf("OpenID discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("OpenID discovery: %s", resp.Status)
	}
	var d struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return fmt.Errorf("OpenID discovery: %w", err)
	}
	if d.Authorization == "" || d.Token == "" {
		return errors.New("OpenID discovery: no authorization or token endpoint")
	}
	s.authz, s.token = d.Authorization, d.Token
	return nil
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *SignIn) init() {
	s.once.Do(func() {
		s.pending = map[string]pendingLogin{}
		s.sessions = map[string]session{}
		if u, err := url.Parse(s.RedirectURL); err == nil {
			s.callbackP = u.Path
		}
	})
}

// Routes serves the sign-in paths: /auth/login, the callback, /auth/logout, and
// /auth/session (whether sign-in is on and this browser is signed in). A nil
// SignIn (no authentication configured) answers /auth/session with auth false.
func (s *SignIn) Routes() http.Handler {
	if s != nil {
		s.init()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/auth/session" && r.Method == http.MethodGet:
			out := map[string]bool{"auth": s != nil}
			if s != nil {
				_, out["signedIn"] = s.sessionToken(r)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(out)
		case s == nil:
			http.NotFound(w, r)
		case r.URL.Path == "/auth/login" && r.Method == http.MethodGet:
			s.login(w, r)
		case r.URL.Path == s.callbackP && r.Method == http.MethodGet:
			s.callback(w, r)
		case r.URL.Path == "/auth/logout" && r.Method == http.MethodPost:
			s.logout(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// OwnsAuth reports whether path is one of the sign-in routes of s (or /auth/session).
func (s *SignIn) OwnsAuth(p string) bool {
	if strings.HasPrefix(p, "/auth/") {
		return true
	}
	if s == nil {
		return false
	}
	s.init()
	return p == s.callbackP
}

func (s *SignIn) login(w http.ResponseWriter, r *http.Request) {
	if err := s.discover(r.Context()); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the OpenID provider cannot be reached now; try again", http.StatusServiceUnavailable)
		return
	}
	state, verifier := random(), random()
	now := time.Now()
	s.mu.Lock()
	for k, p := range s.pending {
		if now.After(p.expires) {
			delete(s.pending, k)
		}
	}
	full := len(s.pending) >= maxPending
	if !full {
		s.pending[state] = pendingLogin{verifier: verifier, expires: now.Add(loginWindow)}
	}
	s.mu.Unlock()
	if full {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many sign-ins in progress; try again", http.StatusServiceUnavailable)
		return
	}
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {s.ClientID}, "redirect_uri": {s.RedirectURL},
		"scope": {"openid profile email groups"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	// The state is also bound to this browser: a code delivered to another browser's
	// callback (login CSRF) finds no matching cookie. Lax, because the provider's
	// redirect back is a cross-site top-level navigation.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: s.callbackP, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int(loginWindow / time.Second)})
	sep := "?"
	if strings.Contains(s.authz, "?") {
		sep = "&"
	}
	http.Redirect(w, r, s.authz+sep+q.Encode(), http.StatusFound)
}

func (s *SignIn) callback(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	c, err := r.Cookie(stateCookie)
	if state == "" || err != nil || c.Value != state {
		http.Error(w, "sign-in not started in this browser, or started too long ago: sign in again", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	p, ok := s.pending[state]
	delete(s.pending, state)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: s.callbackP, MaxAge: -1, HttpOnly: true})
	if !ok || time.Now().After(p.expires) {
		http.Error(w, "sign-in expired: sign in again", http.StatusBadRequest)
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		// The provider's error code is shown; its description is not (it is the
		// provider's text, and may echo what was sent).
		http.Error(w, "the OpenID provider refused the sign-in: "+url.QueryEscape(e), http.StatusForbidden)
		return
	}
	tok, expires, err := s.exchange(r.Context(), r.URL.Query().Get("code"), p.verifier)
	if err != nil {
		http.Error(w, "the sign-in could not be completed: "+err.Error(), http.StatusBadGateway)
		return
	}
	id := random()
	s.mu.Lock()
	now := time.Now()
	for k, v := range s.sessions {
		if now.After(v.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = session{token: tok, expires: expires}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, Expires: expires})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// exchange trades the code for an access token. Errors never carry the code, the
// verifier or the provider's answer body.
func (s *SignIn) exchange(ctx context.Context, code, verifier string) (string, time.Time, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.RedirectURL},
		"client_id": {s.ClientID}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.token, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, errors.New("bad token endpoint")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client().Do(req)
	if err != nil {
		return "", time.Time{}, errors.New("the token endpoint cannot be reached")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", time.Time{}, fmt.Errorf("the token endpoint answered %s", resp.Status)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.AccessToken == "" {
		return "", time.Time{}, errors.New("the token endpoint sent no access token")
	}
	life := time.Duration(out.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	return out.AccessToken, time.Now().Add(life), nil
}

func (s *SignIn) sessionToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.sessions[c.Value]
	if !ok || time.Now().After(v.expires) {
		delete(s.sessions, c.Value)
		return "", false
	}
	return v.token, true
}

func (s *SignIn) logout(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(CSRFHeader) == "" {
		http.Error(w, "missing "+CSRFHeader+" header", http.StatusForbidden)
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// Relay lets the page's requests to the API carry the session's token: a request
// with no Authorization of its own and a live session gets the session's bearer
// token. A write (any method but GET and HEAD) must also carry CSRFHeader; without
// it the token is not added and the API answers 401 as to anyone without one.
func (s *SignIn) Relay(next http.Handler) http.Handler {
	if s == nil {
		return next
	}
	s.init()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && strings.HasPrefix(r.URL.Path, "/api/") {
			safe := r.Method == http.MethodGet || r.Method == http.MethodHead
			if tok, ok := s.sessionToken(r); ok && (safe || r.Header.Get(CSRFHeader) != "") {
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", "Bearer "+tok)
			}
		}
		next.ServeHTTP(w, r)
	})
}
