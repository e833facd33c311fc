package testidp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Main is the storefleet-idp command: `storefleet-idp -config idp.json`. It prints
// "issuer <url>" on stdout once it serves, which is how Start learns the port it bound.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storefleet-idp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "JSON configuration file (issuer, users, clients, audience)")
	listen := fs.String("listen", "", "loopback address to bind, overriding the file's (127.0.0.1:0 picks a free port)")
	admin := fs.Bool("admin", false, "serve the test-only /admin endpoints (key rotation, minting tokens) even if the file does not ask")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "storefleet-idp: -config is required")
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, "storefleet-idp:", err)
		return 2
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	cfg.Admin = cfg.Admin || *admin
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Serve(ctx, cfg, log, func(issuer string) { fmt.Fprintln(stdout, "issuer", issuer) }); err != nil {
		fmt.Fprintln(stderr, "storefleet-idp:", err)
		return 1
	}
	return 0
}

// Serve runs the IdP until ctx ends; ready is called with the issuer once it listens.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, ready func(issuer string)) error {
	if err := cfg.check(); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen: %q is not a loopback address; the test IdP binds loopback only", cfg.Listen)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + ln.Addr().String()
	}
	st, err := newStorage(cfg)
	if err != nil {
		return err
	}
	h, err := newHandler(cfg, st, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	ready(cfg.Issuer)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newHandler(cfg Config, st *storage, log *slog.Logger) (http.Handler, error) {
	// The crypto key encrypts authorization codes; derived from nothing secret because the
	// codes of a test IdP protect nothing, and a fixed key keeps restarts simple.
	key := sha256.Sum256([]byte("storefleet test idp " + cfg.Issuer))
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                key,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedUILocales:       []language.Tag{language.English},
		DefaultLogoutRedirectURI: "/",
	}, st, op.StaticIssuer(cfg.Issuer), op.WithAllowInsecure(), op.WithLogger(log))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	callback := op.AuthCallbackURL(provider)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		renderLogin(w, r.URL.Query().Get("authRequestID"), "")
	})
	mux.Handle("POST /login", interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PostFormValue("id")
		if err := st.checkLogin(r.PostFormValue("username"), r.PostFormValue("password"), id); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			renderLogin(w, id, err.Error())
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	if cfg.Admin {
		mux.HandleFunc("POST /admin/rotate", func(w http.ResponseWriter, r *http.Request) {
			kid, err := st.rotate(r.URL.Query().Get("keep") == "true")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			writeJSON(w, map[string]string{"kid": kid})
		})
		mux.HandleFunc("POST /admin/mint", func(w http.ResponseWriter, r *http.Request) {
			tok, err := mint(r.Body, cfg, st)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			writeJSON(w, map[string]string{"token": tok})
		})
	}
	mux.Handle("/", provider)
	return mux, nil
}

// MintRequest asks the admin endpoint for a token with chosen claims, signed by the IdP's
// current key: how tests get expired, not-yet-valid or wrong-audience tokens that are
// otherwise genuine. Unset fields take the values a normal token would have; Claims may add
// or override anything (iss included), and a null value there removes the claim.
type MintRequest struct {
	Subject   string         `json:"sub"`
	Audience  []string       `json:"aud,omitempty"`
	Groups    []string       `json:"groups,omitempty"`
	IssuedAt  *time.Time     `json:"iat,omitempty"`
	NotBefore *time.Time     `json:"nbf,omitempty"`
	Expiry    *time.Time     `json:"exp,omitempty"`
	Claims    map[string]any `json:"claims,omitempty"`
}

func mint(body io.Reader, cfg Config, st *storage) (string, error) {
	var req MintRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", err
	}
	now := time.Now()
	at := func(t *time.Time, def time.Time) int64 {
		if t != nil {
			return t.Unix()
		}
		return def.Unix()
	}
	aud := req.Audience
	if aud == nil {
		aud = []string{cfg.Audience}
	}
	claims := map[string]any{
		"iss": cfg.Issuer, "sub": req.Subject, "aud": aud, "jti": randomID(),
		"iat": at(req.IssuedAt, now), "nbf": at(req.NotBefore, now),
		"exp":    at(req.Expiry, now.Add(time.Duration(cfg.TokenLifetime))),
		"groups": nonNil(req.Groups),
	}
	for k, v := range req.Claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	k, _ := st.SigningKey(context.Background())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.Key()},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID()))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Storefleet test sign-in</title></head>
<body>
<h1>Sign in</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>User <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

func renderLogin(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, struct{ ID, Error string }{id, msg})
}
