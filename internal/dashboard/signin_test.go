package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/dashboard"
	"github.com/storefleet/storefleet/internal/dashboard/browsertest"
	"github.com/storefleet/storefleet/internal/oidcauth"
	"github.com/storefleet/storefleet/internal/testidp"
)

// TestBrowserSignIn signs in through the real IdP process (authorization code +
// PKCE), then creates a store: the API records the IdP's user as the actor, and a
// write from the page without the CSRF header is refused although the browser has
// the session.
func TestBrowserSignIn(t *testing.T) {
	for _, b := range browsertest.Browsers {
		t.Run(b, func(t *testing.T) { browseSignIn(t, b) })
	}
}

func browseSignIn(t *testing.T, browser string) {
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

	p := browsertest.Start(t, browser, 90*time.Second)
	p.Open(base + "/")
	p.Wait("the signed-out page", "heading", "Signed out", nil)
	p.Click(p.Wait("sign-in link", "link", "Sign in", nil))
	// The IdP's own login page.
	p.TypeInto(p.Wait("user field", "textbox", "User", nil), testidp.DefaultUser)
	p.TypeInto(p.WaitLabel("password field", "Password"), testidp.DefaultUserPassword)
	p.Click(p.Wait("IdP's sign-in button", "button", "Sign in", nil))
	p.Wait("the list, signed in", "heading", "Stores", nil)
	p.Wait("sign-out button", "button", "Sign out", nil)

	// The page never sees the token: the session cookie is HttpOnly.
	if cookies := p.Eval("document.cookie"); cookies != "" {
		t.Fatalf("the page can read cookies: %q", cookies)
	}
	// A write without the CSRF header is not given the session's token.
	status := p.Eval(`fetch('/api/v1/stores', {method: 'POST',
		headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({name: 'forged', engine: 'woocommerce', plan: 'basic', tenant: 'shop-a',
			settings: {adminEmail: 'x@example.com'}})}).then(r => r.status)`)
	if status != strconv.Itoa(http.StatusUnauthorized) {
		t.Fatalf("a write without the CSRF header: %s, want 401", status)
	}

	// The form's create carries the header, so the session's token goes with it.
	p.Open(base + "/#/new")
	p.TypeInto(p.Wait("name field", "textbox", "name (required)", nil), "shop")
	p.Choose(p.Wait("engine field", "combobox", "engine (required)", nil), "woocommerce")
	p.Choose(p.Wait("plan field", "combobox", "plan (required)", nil), "basic")
	p.TypeInto(p.Wait("admin email", "textbox", "adminEmail", nil), "owner@example.com")
	p.Click(p.Wait("create button", "button", "Create store", nil))
	p.Wait("the store's page", "heading", "shop", nil)
	p.Wait("the history naming the IdP's user", "table", "Changes, newest first", func(el browsertest.Element) bool {
		p.Shown = p.Text(el)
		return strings.Contains(p.Shown, idp.Issuer+"#")
	})
}
