package access_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/store"
)

// TestLoadExample: the documented example loads, with the token file taken from
// the example's folder, and every section as serve needs it.
func TestLoadExample(t *testing.T) {
	c, err := access.Load(filepath.Join("..", "..", "docs", "examples", "auth.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &access.OIDC{Issuer: "https://idp.example.com", Audience: "storefleet", ClockSkew: 30 * time.Second,
		Algorithms: []string{"RS256", "ES256"}, SubjectClaim: "sub", GroupsClaim: "groups"}
	if o := c.OIDC; o == nil || o.Issuer != want.Issuer || o.Audience != want.Audience || o.ClockSkew != want.ClockSkew ||
		!slices.Equal(o.Algorithms, want.Algorithms) || o.SubjectClaim != want.SubjectClaim || o.GroupsClaim != want.GroupsClaim {
		t.Errorf("oidc = %+v, want %+v", c.OIDC, want)
	}
	if c.APITokens == nil || c.APITokens.File != filepath.Join("..", "..", "docs", "examples", "tokens.yaml") {
		t.Errorf("apiTokens = %+v, want the file beside the config", c.APITokens)
	}
	if c.Kubernetes == nil || !c.Kubernetes.TokenReview || !slices.Equal(c.Kubernetes.Audiences, []string{"storefleet"}) {
		t.Errorf("kubernetes = %+v", c.Kubernetes)
	}
	if len(c.Rules) != 5 || c.Rules[4].Subjects[0] != "token:dashboard" || !c.Rules[4].ActAs || c.Rules[0].Method != store.AuthOIDC {
		t.Errorf("rules = %+v", c.Rules)
	}
	if c.Limits != (access.Limits{ReadsPerMinute: 600, WritesPerMinute: 60, StoresPerTenant: 500, RemovalsPerHour: 10}) {
		t.Errorf("limits = %+v", c.Limits)
	}
	if c.DefaultTenant != "default" {
		t.Errorf("defaultTenant = %q", c.DefaultTenant)
	}
}

// TestDefaults: a file naming only an authenticator gets the documented defaults.
func TestDefaults(t *testing.T) {
	c, err := access.Parse([]byte("oidc: {issuer: 'http://127.0.0.1:5556', audience: storefleet}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultTenant != store.DefaultTenant || c.OIDC.SubjectClaim != "sub" || c.OIDC.GroupsClaim != "groups" ||
		c.OIDC.ClockSkew != access.DefaultClockSkew || !slices.Equal(c.OIDC.Algorithms, access.DefaultAlgorithms) {
		t.Errorf("defaults not applied: %+v %+v", c, c.OIDC)
	}
	if c.Limits != (access.Limits{ReadsPerMinute: access.DefaultReadsPerMinute, WritesPerMinute: access.DefaultWritesPerMinute,
		StoresPerTenant: access.DefaultStoresPerTenant, RemovalsPerHour: access.DefaultRemovalsPerHour}) {
		t.Errorf("limits = %+v", c.Limits)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("a parsed config does not validate: %v", err)
	}
}

// TestEveryProblemAtOnce: one file with many mistakes is refused with each one named
// by its path and rule, and nothing reported twice.
func TestEveryProblemAtOnce(t *testing.T) {
	const bad = `
defaultTenant: Default
oidc:
  issuer: http://idp.example.com
  clockSkew: 10m
  algorithms: [RS256, none, HS256]
  groupClaim: groups
apiTokens: {}
kubernetes: {tokenReview: yes, audiences: [""]}
rules:
  - {groups: [a], tenants: [shop-a], role: editor}
  - {tenants: ["*"], role: admin}
  - {groups: [b], tenants: [Shop_B, "*"], role: owner, method: ldap}
  - {subjects: [""], tenants: [], role: 5}
  - {groups: [c], tenants: shop-c, role: viewer, actas: true}
limits: {readsPerMinute: 0, writesPerMinute: -1, storesPerTenant: many, removalsPerHour: 1.5, burst: 3}
`
	_, err := access.Parse([]byte(bad))
	if store.ErrorCode(err) != store.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
	want := []string{
		"defaultTenant dns1123Label",
		"oidc.issuer https",
		"oidc.audience required",
		"oidc.clockSkew range",
		"oidc.algorithms[1] oneOf",
		"oidc.algorithms[2] oneOf",
		"oidc.groupClaim unknown",
		"apiTokens.file required",
		"kubernetes.audiences[0] required",
		"rules[1] required",
		"rules[2].tenants[0] tenant",
		"rules[2].role oneOf",
		"rules[2].method oneOf",
		"rules[3].subjects[0] required",
		"rules[3].tenants required",
		"rules[3].role type",
		"rules[4].tenants type",
		"rules[4].actas unknown",
		"limits.readsPerMinute positive",
		"limits.writesPerMinute positive",
		"limits.storesPerTenant type",
		"limits.removalsPerHour type",
		"limits.burst unknown",
	}
	var got []string
	for _, f := range store.FieldErrors(err) {
		got = append(got, f.Field+" "+f.Rule)
		if f.Message == "" {
			t.Errorf("%s: no message", f.Field)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q\n%v", got, want, err)
	}
	if !strings.Contains(err.Error(), "rules[2].role: must be one of viewer, editor, admin") {
		t.Errorf("the error text does not read as documented:\n%v", err)
	}
}

func TestIssuer(t *testing.T) {
	for issuer, ok := range map[string]bool{
		"https://idp.example.com":            true,
		"https://idp.example.com/realms/x":   true,
		"http://127.0.0.1:5556":              true,
		"http://localhost:8080/oidc":         true,
		"http://[::1]:9000":                  true,
		"http://idp.example.com":             false,
		"http://10.0.0.1":                    false,
		"ftp://idp.example.com":              false,
		"idp.example.com":                    false,
		"https://idp.example.com/?x=1":       false,
		"https://user:pw@idp.example.com":    false,
		"https://idp.example.com/#fragment":  false,
		"http://localhost.attacker.example/": false,
	} {
		_, err := access.Parse([]byte("oidc: {issuer: '" + issuer + "', audience: a}\n"))
		if got := err == nil; got != ok {
			t.Errorf("issuer %q: accepted=%v, want %v (%v)", issuer, got, ok, err)
		}
		if !ok && !slices.ContainsFunc(store.FieldErrors(err), func(f store.FieldError) bool { return f.Field == "oidc.issuer" }) {
			t.Errorf("issuer %q: problem not on oidc.issuer: %v", issuer, err)
		}
	}
}

func TestAuthenticatorRequired(t *testing.T) {
	for _, doc := range []string{"", "limits: {storesPerTenant: 3}\n", "kubernetes: {tokenReview: false}\n"} {
		_, err := access.Parse([]byte(doc))
		if !slices.ContainsFunc(store.FieldErrors(err), func(f store.FieldError) bool { return f.Rule == "authenticator" }) {
			t.Errorf("%q: %v, want an authenticator problem", doc, err)
		}
	}
	if _, err := access.Parse([]byte("kubernetes: {tokenReview: true}\n")); err != nil {
		t.Errorf("TokenReview alone: %v", err)
	}
	if _, err := access.Parse([]byte("apiTokens: {file: /etc/storefleet/tokens.yaml}\n")); err != nil {
		t.Errorf("API tokens alone: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, doc := range []string{
		"oidc: {issuer: https://a, audience: a}\noidc: {issuer: https://b, audience: b}\n", // duplicate key
		"rules: [\n",
		"- just\n- a list\n",
	} {
		_, err := access.Parse([]byte(doc))
		if store.ErrorCode(err) != store.EINVALID || len(store.FieldErrors(err)) == 0 {
			t.Errorf("%q: %v, want EINVALID naming the problem", doc, err)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(p, []byte("apiTokens: {file: tokens.yaml}\nrules: [{groups: [g], tenants: [x], role: boss}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := access.Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "rules[0].role") {
		t.Errorf("err = %v, want the file and the field named", err)
	}
	if _, err := access.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}
