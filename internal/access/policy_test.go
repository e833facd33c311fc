package access_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/store"
)

func mustParse(t *testing.T, doc string) *access.Config {
	t.Helper()
	c, err := access.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const policyDoc = `
oidc: {issuer: https://idp.example.com, audience: storefleet}
apiTokens: {file: tokens.yaml}
rules:
  - {groups: [shop-a-editors], tenants: [shop-a], role: editor}
  - {groups: [shop-a-viewers, all-viewers], tenants: [shop-a], role: viewer}
  - {groups: [all-viewers], tenants: ["*"], role: viewer}
  - {subjects: ["https://idp.example.com#root"], tenants: ["*"], role: admin, actAs: true}
  - {groups: [ops], method: kubernetes, tenants: [shop-b], role: admin}
`

func TestPrincipal(t *testing.T) {
	p := access.NewPolicy(mustParse(t, policyDoc))
	for _, c := range []struct {
		name  string
		id    store.Identity
		want  map[string]store.Role
		actAs bool
	}{
		{"no match sees nothing", store.Identity{Subject: "https://idp.example.com#nobody", Method: store.AuthOIDC, Groups: []string{"other"}},
			map[string]store.Role{}, false},
		{"strongest role wins per tenant", store.Identity{Subject: "s", Method: store.AuthOIDC, Groups: []string{"shop-a-viewers", "shop-a-editors"}},
			map[string]store.Role{"shop-a": store.RoleEditor}, false},
		{"rules add up", store.Identity{Subject: "s", Method: store.AuthOIDC, Groups: []string{"all-viewers", "shop-a-editors"}},
			map[string]store.Role{"shop-a": store.RoleEditor, "*": store.RoleViewer}, false},
		{"subject rule, actAs", store.Identity{Subject: "https://idp.example.com#root", Method: store.AuthOIDC},
			map[string]store.Role{"*": store.RoleAdmin}, true},
		{"method restricts a rule", store.Identity{Subject: "s", Method: store.AuthOIDC, Groups: []string{"ops"}},
			map[string]store.Role{}, false},
		{"method matches", store.Identity{Subject: "system:serviceaccount:x:y", Method: store.AuthKubernetes, Groups: []string{"ops"}},
			map[string]store.Role{"shop-b": store.RoleAdmin}, false},
		{"token's own grants, joined by rules", store.Identity{Subject: "token:ci", Method: store.AuthToken,
			Grants: map[string]store.Role{"shop-c": store.RoleEditor, "shop-a": store.RoleViewer, "bad": "owner"}, Groups: []string{"shop-a-editors"}},
			map[string]store.Role{"shop-c": store.RoleEditor, "shop-a": store.RoleEditor}, false},
	} {
		got := p.Principal(c.id)
		if got.Subject != c.id.Subject || got.Method != c.id.Method || !maps.Equal(got.Grants, c.want) || got.ActAs != c.actAs {
			t.Errorf("%s: %+v, want grants %v actAs %v", c.name, got, c.want, c.actAs)
		}
	}
}

// stub is an authenticator whose verdict the test sets: the chain's logic is the
// subject here, the real adapters have their own tests.
type stub struct {
	prefix string
	id     store.Identity
	err    error
	calls  int
}

func (s *stub) Authenticate(_ context.Context, token string) (store.Identity, error) {
	if !strings.HasPrefix(token, s.prefix) {
		return store.Identity{}, store.ErrNotMine
	}
	s.calls++
	return s.id, s.err
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	p := access.NewPolicy(mustParse(t, policyDoc))
	const secret = "sf_0123456789abcdefSECRETPART"
	tokens := &stub{prefix: "sf_", id: store.Identity{Subject: "token:ci", Method: store.AuthToken, Grants: map[string]store.Role{"shop-c": store.RoleEditor}}}
	oidc := &stub{prefix: "ey", id: store.Identity{Subject: "https://idp.example.com#u", Method: store.AuthOIDC, Groups: []string{"shop-a-editors"}}}
	g := access.NewGate(p, tokens, nil, oidc)

	pr, err := g.Principal(ctx, secret)
	if err != nil || pr.Subject != "token:ci" || !pr.Can("shop-c", store.RoleEditor) || oidc.calls != 0 {
		t.Fatalf("API token: %+v %v (oidc asked %d times)", pr, err, oidc.calls)
	}
	pr, err = g.Principal(ctx, "eyJhbGciOi.x.y")
	if err != nil || pr.Subject != "https://idp.example.com#u" || !pr.Can("shop-a", store.RoleEditor) || pr.Sees("shop-c") {
		t.Fatalf("OIDC: %+v %v", pr, err)
	}

	for _, c := range []struct {
		name     string
		token    string
		setErr   error
		wantCode string
	}{
		{"empty", "", nil, store.EUNAUTHORIZED},
		{"nobody's kind", "Basic abc", nil, store.EUNAUTHORIZED},
		{"invalid, message echoes the token", secret, store.Errorf(store.EUNAUTHORIZED, "token %s revoked", secret), store.EUNAUTHORIZED},
		{"invalid, message echoes a piece", secret, store.Errorf(store.EUNAUTHORIZED, "unknown token ...SECRETPA"), store.EUNAUTHORIZED},
		{"cannot tell", secret, &store.Error{Code: store.EUNAVAILABLE, Message: "token file unreadable " + secret}, store.EUNAVAILABLE},
		{"not a verdict", secret, errors.New("boom " + secret), store.EUNAVAILABLE},
	} {
		tokens.err = c.setErr
		_, err := g.Principal(ctx, c.token)
		if store.ErrorCode(err) != c.wantCode {
			t.Errorf("%s: %v, want %s", c.name, err, c.wantCode)
		}
		if c.token != "" && (strings.Contains(err.Error(), "SECRETPA") || strings.Contains(store.ErrorMessage(err), "SECRETPA")) {
			t.Errorf("%s: the error carries the token: %v", c.name, err)
		}
		if errors.Unwrap(err) != nil {
			t.Errorf("%s: the error wraps the authenticator's: %v", c.name, err)
		}
	}
	tokens.err = store.Errorf(store.EUNAUTHORIZED, "token revoked")
	calls := oidc.calls
	if _, err := g.Principal(ctx, secret); store.ErrorMessage(err) != "token revoked" || oidc.calls != calls {
		t.Errorf("a safe verdict is not passed through as is, or the chain went on: %v", err)
	}
	tokens.err, tokens.id.Subject = nil, ""
	if _, err := g.Principal(ctx, secret); store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Errorf("an identity without subject: %v, want EUNAUTHORIZED", err)
	}
}
