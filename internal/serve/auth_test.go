package serve_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/apitoken"
	"github.com/storefleet/storefleet/internal/testidp"
)

// doAs is served.do with a bearer token.
func (s *served) doAs(token, method, path, body string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := apiClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	var h bytes.Buffer
	_ = res.Header.Write(&h)
	fmt.Fprintf(s.all, "%s %s -> %s\n%s\n%s\n", method, path, res.Status, h.String(), b)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// actorTrailer reads the newest commit's Actor trailer of the embedded fleet
// repository with git itself.
func actorTrailer(t *testing.T, data string) string {
	t.Helper()
	out, err := exec.Command("git", "--git-dir", filepath.Join(data, "fleet.git"), "log", "-1",
		"--format=%(trailers:key=Actor,valueonly)%(trailers:key=Tenant,valueonly)", "main").CombinedOutput()
	if err != nil {
		t.Fatalf("git log: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// serve with --auth-config, end to end: a real OpenID provider process issues a
// user's token through its login page (authorization code + PKCE), an API token
// file names a CI token; both get in, as who they are, into the tenant the policy
// gives them; nothing gets in without a token, and no token shows in any output.
func TestServeWithAuthConfig(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{})
	dir := t.TempDir()
	ciToken, ciSum, err := apitoken.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte("tokens:\n- {name: ci, tenant: shop-b, role: editor, sha256: "+ciSum+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`oidc: {issuer: %q, audience: %q}
apiTokens: {file: tokens.yaml}
rules:
  - {groups: [%s], method: oidc, tenants: [shop-a], role: editor}
`, idp.Issuer, idp.Audience(), testidp.DefaultUserGroup)), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", data, "--seed-dir", "../../fleet", "--auth-config", conf)
	if !strings.Contains(s.err.String(), "authentication is on") {
		t.Errorf("serve does not say authentication is on:\n%s", s.err)
	}

	for _, p := range []string{"/healthz", "/openapi.json"} {
		if r := s.do("GET", p, ""); r.status != http.StatusOK {
			t.Errorf("public %s: %d", p, r.status)
		}
	}
	r := s.do("POST", "/api/v1/stores", storeBody("nobody"))
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer realm="storefleet"` {
		t.Fatalf("no token: %d %q %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
	}

	user := idp.UserToken(t, testidp.DefaultUser, testidp.DefaultUserPassword)
	if r := s.doAs(user, "POST", "/api/v1/stores", storeBody("alices")); r.status != http.StatusAccepted {
		t.Fatalf("OIDC user create: %d %s", r.status, r.body)
	}
	if got, want := actorTrailer(t, data), idp.Issuer+"#"+testidp.DefaultUser+"\nshop-a"; got != want {
		t.Errorf("OIDC user's trailers %q, want %q", got, want)
	}
	if r := s.doAs(ciToken, "POST", "/api/v1/stores", storeBody("cis")); r.status != http.StatusAccepted {
		t.Fatalf("API token create: %d %s", r.status, r.body)
	}
	if got := actorTrailer(t, data); got != "token:ci\nshop-b" {
		t.Errorf("API token's trailers %q, want token:ci and shop-b", got)
	}
	// Each sees its own tenant's store, and the other's is not found.
	if r := s.doAs(ciToken, "GET", "/api/v1/stores/alices", ""); r.status != http.StatusNotFound {
		t.Errorf("CI token reading shop-a's store: %d", r.status)
	}
	if r := s.doAs(user, "GET", "/api/v1/stores/cis", ""); r.status != http.StatusNotFound {
		t.Errorf("user reading shop-b's store: %d", r.status)
	}
	if r := s.doAs(user+"x", "GET", "/api/v1/stores", ""); r.status != http.StatusUnauthorized ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("tampered JWT: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}

	// Tokens the provider itself signed but that are not valid here, and one it did
	// not sign: each a 401 naming invalid_token, and nothing written.
	before := commitCount(t, data)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	good := idp.Mint(t, testidp.MintRequest{Subject: "mallory", Groups: []string{testidp.DefaultUserGroup}})
	parts := strings.SplitN(good, ".", 3)
	refused := map[string]string{
		"expired":        idp.Mint(t, testidp.MintRequest{Subject: "mallory", Groups: []string{testidp.DefaultUserGroup}, IssuedAt: &past, Expiry: &past}),
		"not yet valid":  idp.Mint(t, testidp.MintRequest{Subject: "mallory", Groups: []string{testidp.DefaultUserGroup}, NotBefore: &future}),
		"wrong audience": idp.Mint(t, testidp.MintRequest{Subject: "mallory", Groups: []string{testidp.DefaultUserGroup}, Audience: []string{"another-api"}}),
		"alg none":       base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"tampered":       parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+idp.Issuer+`","sub":"mallory","aud":"`+idp.Audience()+`","groups":["platform"],"exp":9999999999}`)) + "." + parts[2],
	}
	for what, tok := range refused {
		r := s.doAs(tok, "POST", "/api/v1/stores", storeBody("mallorys"))
		if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s token: %d %q %s", what, r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
	}
	if n := commitCount(t, data); n != before {
		t.Errorf("refused tokens committed: %s commits, were %s", n, before)
	}

	// Revoked by removing its line: refused without a restart.
	if err := os.WriteFile(tokens, []byte("tokens: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Polled, not timed: the file is re-read on change; the bound only keeps a broken
	// reload from hanging the test.
	revoked := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !revoked; time.Sleep(50 * time.Millisecond) {
		revoked = s.doAs(ciToken, "GET", "/api/v1/stores", "").status == http.StatusUnauthorized
	}
	if !revoked {
		t.Error("a revoked API token is still accepted")
	}
	// The provider rotates its signing key: a token signed with the new key is taken
	// without a restart.
	idp.Rotate(t, true)
	rotated := idp.Mint(t, testidp.MintRequest{Subject: "bob", Groups: []string{testidp.DefaultUserGroup}})
	if r := s.doAs(rotated, "GET", "/api/v1/stores", ""); r.status != http.StatusOK {
		t.Errorf("token of the new key after a rotation: %d %s", r.status, r.body)
	}
	s.stop()
	all.mustNotShow(t, ciToken, user, good, rotated)
}

// Without --auth-config on loopback serve runs without authentication (make run)
// and says so at start; X-Actor is then the actor.
func TestServeWithoutAuthSaysSo(t *testing.T) {
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", t.TempDir(), "--seed-dir", "../../fleet")
	if !strings.Contains(s.err.String(), "authentication is off") {
		t.Errorf("serve does not say authentication is off:\n%s", s.err)
	}
	if r := s.do("GET", "/api/v1/stores", ""); r.status != http.StatusOK {
		t.Errorf("without authentication: %d %s", r.status, r.body)
	}
}

func commitCount(t *testing.T, data string) string {
	t.Helper()
	out, err := exec.Command("git", "--git-dir", filepath.Join(data, "fleet.git"), "rev-list", "--count", "main").CombinedOutput()
	if err != nil {
		t.Fatalf("git rev-list: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
