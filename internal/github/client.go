package github

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"
)

// Credentials are how gitops-api authenticates to GitHub: a token, or a GitHub App
// installation (whose tokens ghinstallation renews before they expire).
type Credentials struct {
	Token string
	// AppID, InstallationID and PrivateKeyFile name a GitHub App installation.
	AppID, InstallationID int64
	PrivateKeyFile        string
}

// NewClient returns a go-github client for the API at baseURL ("" for
// api.github.com; a GitHub Enterprise server's URL otherwise).
func NewClient(baseURL string, cr Credentials, tr http.RoundTripper) (*gh.Client, error) {
	if tr == nil {
		tr = http.DefaultTransport
	}
	var (
		hc  *http.Client
		itr *ghinstallation.Transport
	)
	switch {
	case cr.Token != "" && cr.AppID != 0:
		return nil, errors.New("github: a token or a GitHub App, not both")
	case cr.Token != "":
		hc = &http.Client{Transport: tr}
	case cr.AppID != 0:
		if cr.InstallationID == 0 || cr.PrivateKeyFile == "" {
			return nil, errors.New("github: a GitHub App needs its installation id and private key file")
		}
		key, err := os.ReadFile(cr.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("github: read the App's private key: %w", err)
		}
		itr, err = ghinstallation.New(tr, cr.AppID, cr.InstallationID, key)
		if err != nil {
			// The key's bytes are never in the error: ghinstallation says only that
			// it could not parse it.
			return nil, fmt.Errorf("github: the App's private key: %w", err)
		}
		hc = &http.Client{Transport: itr}
	default:
		return nil, errors.New("github: a token or a GitHub App is needed")
	}
	c := gh.NewClient(hc)
	if cr.Token != "" {
		c = c.WithAuthToken(cr.Token)
	}
	if baseURL != "" {
		var err error
		if c, err = c.WithEnterpriseURLs(baseURL, baseURL); err != nil {
			return nil, fmt.Errorf("github: base URL: %w", err)
		}
	}
	if itr != nil {
		// The installation tokens come from the same API (an Enterprise server's
		// /api/v3), as go-github normalised it.
		itr.BaseURL = strings.TrimSuffix(c.BaseURL.String(), "/")
	}
	return c, nil
}
