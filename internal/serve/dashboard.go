package serve

import (
	"errors"
	"flag"
	"net/http"
	"net/url"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/dashboard"
)

// dashboardFlags configure the dashboard's sign-in; the page itself needs none.
type dashboardFlags struct {
	clientID    string
	redirectURL string
}

func dashboardFlagSet(fs *flag.FlagSet, d *dashboardFlags, env func(string) string) {
	fs.StringVar(&d.clientID, "dashboard-client-id", env("STOREFLEET_DASHBOARD_CLIENT_ID"),
		"the dashboard's public OpenID Connect client (authorization code + PKCE) at the --auth-config oidc issuer; empty = the dashboard offers no sign-in [STOREFLEET_DASHBOARD_CLIENT_ID]")
	fs.StringVar(&d.redirectURL, "dashboard-redirect-url", env("STOREFLEET_DASHBOARD_REDIRECT_URL"),
		"the callback registered for --dashboard-client-id, e.g. https://storefleet.example.com/callback; its path is served here [STOREFLEET_DASHBOARD_REDIRECT_URL]")
}

// check refuses a sign-in that could not work: without an OpenID issuer there is
// nobody to sign in with, and the callback must be an absolute URL the provider
// can send the browser to.
func (d dashboardFlags) check(conf *access.Config) []error {
	if d.clientID == "" && d.redirectURL == "" {
		return nil
	}
	var errs []error
	if d.clientID == "" {
		errs = append(errs, errors.New("--dashboard-redirect-url needs --dashboard-client-id"))
	}
	if conf == nil || conf.OIDC == nil {
		errs = append(errs, errors.New("--dashboard-client-id needs an oidc issuer in --auth-config"))
	}
	u, err := url.Parse(d.redirectURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path == "" || u.Path == "/" {
		errs = append(errs, errors.New("--dashboard-redirect-url must be an absolute http(s) URL with a path, e.g. https://storefleet.example.com/callback"))
	}
	return errs
}

// signIn is the dashboard's sign-in of a checked configuration; nil = none.
func (d dashboardFlags) signIn(conf *access.Config) *dashboard.SignIn {
	if d.clientID == "" || conf == nil || conf.OIDC == nil {
		return nil
	}
	return &dashboard.SignIn{Issuer: conf.OIDC.Issuer, ClientID: d.clientID, RedirectURL: d.redirectURL}
}

// withDashboard puts the dashboard beside the API on the same listener: the page,
// its assets and the sign-in routes are public (they hold no data), every other
// path goes to the API, so /api/v1 stays behind its authentication.
func withDashboard(apiHandler http.Handler, signIn *dashboard.SignIn) http.Handler {
	return dashboard.Mount(apiHandler, signIn)
}
