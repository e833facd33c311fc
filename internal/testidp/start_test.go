package testidp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func audOf(c map[string]any) []string {
	switch v := c["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			out = append(out, a.(string))
		}
		return out
	}
	return nil
}

// The real flows give JWT access tokens carrying what the API checks: iss, sub, aud, the
// times and groups.
func TestFlowsIssueJWTAccessTokens(t *testing.T) {
	idp := Start(t, Options{})

	user := claimsOf(t, idp.UserToken(t, DefaultUser, DefaultUserPassword))
	if user["iss"] != idp.Issuer || user["sub"] != DefaultUser || !slices.Contains(audOf(user), DefaultAudience) {
		t.Fatalf("user token claims: %v", user)
	}
	for _, k := range []string{"exp", "iat", "nbf"} {
		if _, ok := user[k].(float64); !ok {
			t.Fatalf("user token lacks %s: %v", k, user)
		}
	}
	if g, _ := user["groups"].([]any); len(g) != 1 || g[0] != DefaultUserGroup {
		t.Fatalf("user token groups: %v", user["groups"])
	}

	cc := claimsOf(t, idp.ClientToken(t, AutomationClient, AutomationSecret))
	if cc["sub"] != AutomationClient || !slices.Contains(audOf(cc), DefaultAudience) {
		t.Fatalf("client token claims: %v", cc)
	}
	if g, _ := cc["groups"].([]any); len(g) != 1 || g[0] != AutomationGroup {
		t.Fatalf("client token groups: %v", cc["groups"])
	}
}

func TestWrongCredentialsGetNoToken(t *testing.T) {
	idp := Start(t, Options{})
	if _, err := idp.userToken(context.Background(), DefaultUser, "wrong"); err == nil {
		t.Fatal("a wrong password got a token")
	}
	d, err := idp.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idp.token(context.Background(), d.Token, map[string][]string{"grant_type": {"client_credentials"}}, AutomationClient, "wrong"); err == nil {
		t.Fatal("a wrong client secret got a token")
	}
}

func TestMintAndRotate(t *testing.T) {
	idp := Start(t, Options{})
	tok := idp.Mint(t, MintRequest{Subject: "bob", Audience: []string{"other"}})
	c := claimsOf(t, tok)
	if c["sub"] != "bob" || !slices.Equal(audOf(c), []string{"other"}) || c["iss"] != idp.Issuer {
		t.Fatalf("minted claims: %v", c)
	}
	kid1 := headerKid(t, tok)
	kid2 := idp.Rotate(t, false)
	if kid2 == kid1 || headerKid(t, idp.Mint(t, MintRequest{Subject: "bob"})) != kid2 {
		t.Fatalf("rotation did not change the signing key: %s → %s", kid1, kid2)
	}
}

func headerKid(t *testing.T, tok string) string {
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	_ = json.Unmarshal(b, &h)
	return h.Kid
}
