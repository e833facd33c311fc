package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The sign-in flags are refused when they cannot work, and accepted with an OIDC
// issuer and an absolute callback.
func TestDashboardSignInFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dashboard-client-id", "storefleet-dashboard", "--dashboard-redirect-url", "http://127.0.0.1:8080/callback"}, "needs an oidc issuer"},
		{[]string{"--auth-config", writeAuthConfig(t, oidcConfig), "--dashboard-client-id", "storefleet-dashboard", "--dashboard-redirect-url", "/callback"}, "absolute http(s) URL"},
		{[]string{"--auth-config", writeAuthConfig(t, oidcConfig), "--dashboard-redirect-url", "http://127.0.0.1:8080/callback"}, "needs --dashboard-client-id"},
	} {
		_, err := parse(tc.args, vars(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	c, err := parse([]string{"--auth-config", writeAuthConfig(t, oidcConfig), "--dashboard-client-id", "storefleet-dashboard",
		"--dashboard-redirect-url", "http://127.0.0.1:8080/callback"}, vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.dash.signIn(c.access.conf); s == nil || s.Issuer != c.access.conf.OIDC.Issuer {
		t.Fatalf("sign-in %+v, want the auth config's issuer", s)
	}
}

// The page is served at / beside the API; every other path reaches the API as it was.
func TestDashboardBesideAPI(t *testing.T) {
	apiHit := ""
	srv := httptest.NewServer(withDashboard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHit = r.URL.Path
		w.WriteHeader(http.StatusTeapot)
	}), nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "/assets/app.js") || apiHit != "" {
		t.Fatalf("/: %d %s, api saw %q", resp.StatusCode, resp.Header.Get("Content-Type"), apiHit)
	}
	for _, p := range []string{"/api/v1/stores", "/healthz", "/openapi.json", "/nope"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || apiHit != p {
			t.Errorf("%s: %d, api saw %q", p, resp.StatusCode, apiHit)
		}
	}
}
