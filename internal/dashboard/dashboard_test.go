package dashboard_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/dashboard"
)

// Each asset goes out with its real type (a module script with another type is
// refused by the browser) and the page's policy; paths that are not assets are not
// the dashboard's.
func TestAssets(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler())
	defer srv.Close()
	for path, typ := range map[string]string{"/": "text/html", "/assets/app.js": "text/javascript", "/assets/style.css": "text/css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) ||
			!strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q csp %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), csp)
		}
	}
	for _, path := range []string{"/assets/nope.js", "/assets/index.html", "/assets/../dashboard.go", "/index.html"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// The sign-in refuses what it did not start: a callback whose state is not this
// browser's (login CSRF), or one it never issued; a logout without the CSRF header.
// Without authentication there is nothing to sign in to.
func TestSignInRefusals(t *testing.T) {
	none := httptest.NewServer(dashboard.Mount(http.NotFoundHandler(), nil))
	defer none.Close()
	resp, err := http.Get(none.URL + "/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]bool
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got["auth"] || got["signedIn"] {
		t.Fatalf("/auth/session without auth: %v", got)
	}
	if resp, err := http.Get(none.URL + "/auth/login"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/auth/login without auth: %v %v", resp.StatusCode, err)
	}

	s := &dashboard.SignIn{Issuer: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "http://127.0.0.1:8080/callback"}
	srv := httptest.NewServer(dashboard.Mount(http.NotFoundHandler(), s))
	defer srv.Close()
	for name, cookie := range map[string]string{"no cookie": "", "another browser's state": "other"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/callback?state=abc&code=x", nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "storefleet_login", Value: cookie})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("callback, %s: %d, want 400", name, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/callback?state=abc&code=x", nil)
	req.AddCookie(&http.Cookie{Name: "storefleet_login", Value: "abc"}) // matches, but never issued
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a state never issued: %v %v", resp.StatusCode, err)
	}
	resp, err = http.Post(srv.URL+"/auth/logout", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without the CSRF header: %d, want 403", resp.StatusCode)
	}
	// The provider down: nothing started, 503 with Retry-After.
	resp, err = http.Get(srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("login with the provider down: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
