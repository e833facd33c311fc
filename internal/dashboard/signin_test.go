package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/dashboard"
	"github.com/storefleet/storefleet/internal/oidcauth"
	"github.com/storefleet/storefleet/internal/testidp"
)

// TestBrowserSignIn signs in through the real IdP process (authorization code +
// PKCE), then creates a store: the API records the IdP's user as the actor, and a
// write from the page without the CSRF header is refused although the browser has
// the session.
func TestBrowserSignIn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp := testidp.Start(t, testidp.Options{Port: testidp.FreePort(t), TokenLifetime: time.Hour,
		Clients: []testidp.Client{{ID: testidp.DashboardClient, RedirectURIs: []string{base + "/callback"}}}})
	conf := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("oidc: {issuer: %q, audience: %q}\nrules:\n  - {groups: [%s], method: oidc, tenants: [shop-a], role: editor}\n",
		idp.Issuer, idp.Audience(), testidp.DefaultUserGroup)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := access.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx0, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := oidcauth.New(ctx0, oidcauth.Config{Issuer: c.OIDC.Issuer, Audience: c.OIDC.Audience}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := access.NewGate(access.NewPolicy(c), v)
	fl := newFleet(t)
	h := api.Handler(access.NewService(fl, fl, access.Options{Limits: c.Limits}), api.Options{Authenticate: gate.Principal})
	signIn := &dashboard.SignIn{Issuer: idp.Issuer, ClientID: testidp.DashboardClient, RedirectURL: base + "/callback"}
	srv := &http.Server{Handler: dashboard.Mount(h, signIn)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the signed-out page", "heading", "Signed out", nil)
	click(t, ctx, waitFor(t, ctx, "sign-in link", "link", "Sign in", nil))
	// The IdP's own login page.
	typeInto(t, ctx, waitFor(t, ctx, "user field", "textbox", "User", nil), testidp.DefaultUser)
	typeInto(t, ctx, waitFor(t, ctx, "password field", "textbox", "Password", nil), testidp.DefaultUserPassword)
	click(t, ctx, waitFor(t, ctx, "IdP's sign-in button", "button", "Sign in", nil))
	waitFor(t, ctx, "the list, signed in", "heading", "Stores", nil)
	waitFor(t, ctx, "sign-out button", "button", "Sign out", nil)

	// The page never sees the token: the session cookie is HttpOnly.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	if err != nil {
		t.Fatal(err)
	}
	if cookies != "" {
		t.Fatalf("the page can read cookies: %q", cookies)
	}
	// A write without the CSRF header is not given the session's token.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`fetch('/api/v1/stores', {method: 'POST',
		headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({name: 'forged', engine: 'woocommerce', plan: 'basic', tenant: 'shop-a',
			settings: {adminEmail: 'x@example.com'}})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized {
		t.Fatalf("a write without the CSRF header: %v, want 401", status)
	}

	// The form's create carries the header, so the session's token goes with it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/new")); err != nil {
		t.Fatal(err)
	}
	typeInto(t, ctx, waitFor(t, ctx, "name field", "textbox", "name (required)", nil), "shop")
	choose(t, ctx, waitFor(t, ctx, "engine field", "combobox", "engine (required)", nil), "woocommerce")
	choose(t, ctx, waitFor(t, ctx, "plan field", "combobox", "plan (required)", nil), "basic")
	typeInto(t, ctx, waitFor(t, ctx, "admin email", "textbox", "adminEmail", nil), "owner@example.com")
	click(t, ctx, waitFor(t, ctx, "create button", "button", "Create store", nil))
	waitFor(t, ctx, "the store's page", "heading", "shop", nil)
	waitFor(t, ctx, "the history naming the IdP's user", "table", "Changes, newest first", func(n *accessibility.Node) bool {
		shown = text(t, ctx, n)
		return strings.Contains(shown, idp.Issuer+"#")
	})
}
