package testidp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Defaults of Start: one user per role the tests talk about, the dashboard's public client
// and a confidential client for automation.
const (
	DefaultAudience     = "storefleet"
	DashboardClient     = "storefleet-dashboard"
	DashboardRedirect   = "http://127.0.0.1:8089/callback"
	AutomationClient    = "storefleet-ci"
	AutomationSecret    = "ci-secret-for-tests-only"
	AutomationGroup     = "automation"
	DefaultUser         = "alice"
	DefaultUserPassword = "alice-password"
	DefaultUserGroup    = "shop-a-editors"
)

// Options shape a test IdP; zero values take the defaults above.
type Options struct {
	// Port to bind on 127.0.0.1; 0 picks a free one. A fixed port lets a test configure a
	// verifier before the issuer exists (see FreePort).
	Port          int
	Audience      string
	TokenLifetime time.Duration
	Users         []User
	Clients       []Client
}

// IdP is a running storefleet-idp process.
type IdP struct {
	Issuer string
	cfg    Config
	cmd    *exec.Cmd
	done   chan struct{}
	http   *http.Client
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// binary builds cmd/storefleet-idp once per test process. The output is named by the
// binary's own hash under the user cache, so parallel test processes never overwrite a binary
// another one runs; go's build cache makes every build after the first a link step.
func binary() (string, error) {
	buildOnce.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "storefleet", "testidp")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		tmp, err := os.CreateTemp(dir, "build-*")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/storefleet-idp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building storefleet-idp: %v\n%s", err, out)
			return
		}
		b, err := os.ReadFile(tmp.Name())
		if err != nil {
			buildErr = err
			return
		}
		sum := sha256.Sum256(b)
		buildPath = filepath.Join(dir, "storefleet-idp-"+hex.EncodeToString(sum[:8]))
		pruneOld(dir, buildPath)
		if _, err := os.Stat(buildPath); err == nil {
			return
		}
		buildErr = os.Rename(tmp.Name(), buildPath)
	})
	return buildPath, buildErr
}

// pruneOld removes binaries of older sources, left a day ago or more (a test process still
// running one keeps it open, so removing it cannot break that process).
func pruneOld(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "storefleet-idp-*"))
	for _, p := range old {
		if fi, err := os.Stat(p); err == nil && p != keep && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.Remove(p)
		}
	}
}

// FreePort returns a loopback port free at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// IssuerFor is the issuer URL an IdP started on port will have.
func IssuerFor(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// Start builds (once) and runs the IdP, waits until its discovery document answers, and
// stops it when the test ends.
func Start(t testing.TB, opts Options) *IdP {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listen:        "127.0.0.1:" + strconv.Itoa(opts.Port),
		Audience:      opts.Audience,
		TokenLifetime: Duration(opts.TokenLifetime),
		Users:         opts.Users,
		Clients:       opts.Clients,
		Admin:         true,
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Users == nil {
		cfg.Users = []User{{Name: DefaultUser, Password: DefaultUserPassword, Email: "alice@example.test", Groups: []string{DefaultUserGroup}}}
	}
	if cfg.Clients == nil {
		cfg.Clients = []Client{
			{ID: DashboardClient, RedirectURIs: []string{DashboardRedirect}},
			{ID: AutomationClient, Secret: AutomationSecret, Groups: []string{AutomationGroup}},
		}
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "idp.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &IdP{cfg: cfg, cmd: cmd, done: make(chan struct{}),
		http: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	issuer := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "issuer "); ok {
				issuer <- v
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("storefleet-idp log:\n%s", stderr.String())
		}
	})
	select {
	case p.Issuer = <-issuer:
	case <-p.done:
		t.Fatalf("storefleet-idp exited before serving:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("storefleet-idp did not report its issuer within 30s:\n%s", stderr.String())
	}
	p.cfg.Issuer = p.Issuer
	for i := 0; ; i++ {
		resp, err := p.http.Get(p.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 100 {
			t.Fatalf("storefleet-idp discovery never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// Stop ends the IdP process (a test of an issuer going away calls it early).
func (p *IdP) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Audience is the aud the IdP puts in its access tokens.
func (p *IdP) Audience() string { return p.cfg.Audience }

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

type discovery struct {
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
}

func (p *IdP) discover(ctx context.Context) (discovery, error) {
	var d discovery
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Issuer+"/.well-known/openid-configuration", nil)
	resp, err := p.http.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

// UserToken logs user in through the real authorization-code flow with PKCE, as the dashboard
// will: GET the authorization endpoint, POST the login form, follow the redirects to the
// client's redirect URI, and exchange the code (with the verifier) for an access token.
func (p *IdP) UserToken(t testing.TB, user, password string) string {
	t.Helper()
	tok, err := p.userToken(context.Background(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (p *IdP) userToken(ctx context.Context, user, password string) (string, error) {
	var client Client
	for _, c := range p.cfg.Clients {
		if c.Secret == "" && len(c.RedirectURIs) > 0 {
			client = c
			break
		}
	}
	if client.ID == "" {
		return "", fmt.Errorf("no public client configured")
	}
	d, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	verifierBytes := make([]byte, 32)
	_, _ = rand.Read(verifierBytes)
	verifier := base64.RawURLEncoding.EncodeToString(verifierBytes)
	challenge := sha256.Sum256([]byte(verifier))
	state := hex.EncodeToString(verifierBytes[:8])
	redirect := client.RedirectURIs[0]
	q := url.Values{
		"client_id": {client.ID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid groups email"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
	}
	resp, err := p.get(ctx, d.Authorization+"?"+q.Encode())
	if err != nil {
		return "", err
	}
	loginURL, err := p.location(resp, d.Authorization)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	id := loginURL.Query().Get("authRequestID")
	if page, err := p.get(ctx, loginURL.String()); err != nil || page.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login page: %v %v", err, statusOf(page))
	}
	form := url.Values{"id": {id}, "username": {user}, "password": {password}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, loginURL.Scheme+"://"+loginURL.Host+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = p.http.Do(req)
	if err != nil {
		return "", err
	}
	next, err := p.location(resp, loginURL.String())
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	for hop := 0; !strings.HasPrefix(next.String(), redirect); hop++ {
		if hop == 5 {
			return "", fmt.Errorf("too many redirects before %s", redirect)
		}
		resp, err := p.get(ctx, next.String())
		if err != nil {
			return "", err
		}
		if next, err = p.location(resp, next.String()); err != nil {
			return "", fmt.Errorf("callback: %w", err)
		}
	}
	if next.Query().Get("state") != state {
		return "", fmt.Errorf("state not returned")
	}
	code := next.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("no code in %s: %s", redirect, next.Query().Get("error_description"))
	}
	return p.token(ctx, d.Token, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {client.ID}, "code_verifier": {verifier},
	}, "", "")
}

// ClientToken gets a token for a confidential client by client_credentials.
func (p *IdP) ClientToken(t testing.TB, clientID, secret string) string {
	t.Helper()
	d, err := p.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.token(context.Background(), d.Token, url.Values{"grant_type": {"client_credentials"}, "scope": {"groups"}}, clientID, secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (p *IdP) token(ctx context.Context, endpoint string, form url.Values, user, secret string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(secret))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %s: %s", resp.Status, body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: no access_token in %s", body)
	}
	return out.AccessToken, nil
}

// Mint asks the admin endpoint for a token with chosen claims, signed by the current key.
func (p *IdP) Mint(t testing.TB, req MintRequest) string {
	t.Helper()
	var out struct{ Token string }
	p.admin(t, "/admin/mint", req, &out)
	return out.Token
}

// Rotate makes the IdP sign with a new key; keep leaves the old key in its JWKS. It returns
// the new key id.
func (p *IdP) Rotate(t testing.TB, keep bool) string {
	t.Helper()
	var out struct{ Kid string }
	p.admin(t, "/admin/rotate?keep="+strconv.FormatBool(keep), nil, &out)
	return out.Kid
}

func (p *IdP) admin(t testing.TB, path string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	resp, err := p.http.Post(p.Issuer+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func (p *IdP) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func (p *IdP) location(resp *http.Response, base string) (*url.URL, error) {
	if resp.StatusCode/100 != 3 {
		return nil, fmt.Errorf("expected a redirect, got %s", resp.Status)
	}
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	l, err := b.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, err
	}
	return l, nil
}

func statusOf(r *http.Response) string {
	if r == nil {
		return ""
	}
	return r.Status
}
