package serve

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeAuthConfig writes an access configuration for tests; OIDC only, since its
// issuer is not asked before serve starts.
func writeAuthConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const oidcConfig = `oidc: {issuer: "https://idp.example.com", audience: storefleet}
rules:
  - {groups: [platform], method: oidc, tenants: ["*"], role: admin}
`

// Without authentication serve listens on loopback only; anywhere else it needs
// --auth-config or, knowing the risk, the loudly named flag.
func TestNoAuthenticationOnlyOnLoopback(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.2:0"} {
		if _, err := parse([]string{"--listen", listen}, vars(nil)); err != nil {
			t.Errorf("--listen %s without auth: %v", listen, err)
		}
	}
	for _, listen := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080", "api.example.com:8080"} {
		_, err := parse([]string{"--listen", listen}, vars(nil))
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--auth-config") || !strings.Contains(err.Error(), "--insecure-allow-unauthenticated-network") {
			t.Errorf("--listen %s without auth: %v, want a usage error naming --auth-config and the insecure flag", listen, err)
		}
		if _, err := parse([]string{"--listen", listen, "--insecure-allow-unauthenticated-network"}, vars(nil)); err != nil {
			t.Errorf("--listen %s with the insecure flag: %v", listen, err)
		}
		if _, err := parse([]string{"--listen", listen}, vars(map[string]string{"STOREFLEET_INSECURE_ALLOW_UNAUTHENTICATED_NETWORK": "true"})); err != nil {
			t.Errorf("--listen %s with the insecure variable: %v", listen, err)
		}
		c, err := parse([]string{"--listen", listen, "--auth-config", writeAuthConfig(t, oidcConfig)}, vars(nil))
		if err != nil || c.access.conf == nil || c.access.conf.OIDC == nil {
			t.Errorf("--listen %s with --auth-config: %v", listen, err)
		}
	}
}

// A bad access configuration stops serve before anything is created, each problem
// named by its field, beside serve's other problems.
func TestAuthConfigProblems(t *testing.T) {
	bad := writeAuthConfig(t, `oidc: {issuer: "http://idp.example.com", audience: storefleet}
kubernetes: {tokenReview: true}
rules:
  - {groups: [a], tenants: [shop-a], role: owner}
colour: blue
`)
	_, err := parse([]string{"--auth-config", bad, "--log-format", "xml"}, vars(nil))
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("want a usage error, got %v", err)
	}
	for _, want := range []string{"--auth-config", "colour", "--log-format"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
	_, err = parse([]string{"--auth-config", filepath.Join(t.TempDir(), "missing.yaml")}, vars(nil))
	if err == nil || !strings.Contains(err.Error(), "--auth-config") {
		t.Errorf("missing file: %v", err)
	}
	tr := writeAuthConfig(t, "kubernetes: {tokenReview: true}\nrules: []\n")
	_, err = parse([]string{"--auth-config", tr}, vars(nil))
	if err == nil || !strings.Contains(err.Error(), "tokenReview needs a cluster") {
		t.Errorf("TokenReview without a cluster: %v", err)
	}
}

// The insecure flag is loud at every start: a warning that names the flag and the
// risk. On loopback serve only says that authentication is off.
func TestNoAuthenticationIsAnnounced(t *testing.T) {
	for listen, want := range map[string]string{
		"0.0.0.0:8080":   "level=WARN msg=\"AUTHENTICATION IS OFF ON A NETWORK ADDRESS (--insecure-allow-unauthenticated-network)",
		"127.0.0.1:8080": "level=INFO msg=\"authentication is off",
	} {
		var b strings.Builder
		announceNoAuth(slog.New(slog.NewTextHandler(&b, nil)), listen)
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s: %s, want %s", listen, b.String(), want)
		}
	}
}
