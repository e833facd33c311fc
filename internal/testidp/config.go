package testidp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Config is the IdP's whole configuration, read from a JSON file (-config) so that a test can
// describe its users and clients in one value.
type Config struct {
	// Listen is the loopback address to bind ("127.0.0.1:0" picks a free port, reported on
	// stdout). Anything but a loopback host is refused.
	Listen string `json:"listen"`
	// Issuer defaults to http://<bound address>.
	Issuer string `json:"issuer,omitempty"`
	// Audience is put in every access token's aud (beside the client id for the
	// authorization-code flow, which the ID token needs).
	Audience      string   `json:"audience"`
	TokenLifetime Duration `json:"tokenLifetime,omitempty"`
	Users         []User   `json:"users"`
	Clients       []Client `json:"clients"`
	// Admin enables the test-only /admin endpoints (key rotation, minting tokens with chosen
	// claims). Off unless asked, so the binary run by hand is a plain IdP.
	Admin bool `json:"admin,omitempty"`
}

// User is a person who logs in on the login page.
type User struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// Client is an OAuth client. Without a secret it is public (PKCE is then required, as for the
// dashboard); with one it is confidential and may use client_credentials.
type Client struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret,omitempty"`
	RedirectURIs []string `json:"redirectURIs,omitempty"`
	// Groups put in the tokens the client gets for itself (client_credentials).
	Groups []string `json:"groups,omitempty"`
}

// Duration reads "90s" / "5m" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads and checks a config file; unknown fields are refused so a typo does not
// silently leave a user out.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, c.check()
}

func (c *Config) check() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = Duration(5 * time.Minute)
	}
	if c.Audience == "" {
		return errors.New("audience: required")
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		if u.Name == "" || u.Password == "" {
			return fmt.Errorf("users[%d]: name and password required", i)
		}
		if seen["u:"+u.Name] {
			return fmt.Errorf("users[%d].name: %q twice", i, u.Name)
		}
		seen["u:"+u.Name] = true
	}
	for i, cl := range c.Clients {
		if cl.ID == "" {
			return fmt.Errorf("clients[%d].id: required", i)
		}
		if seen["c:"+cl.ID] {
			return fmt.Errorf("clients[%d].id: %q twice", i, cl.ID)
		}
		seen["c:"+cl.ID] = true
		if cl.Secret == "" && len(cl.RedirectURIs) == 0 {
			return fmt.Errorf("clients[%d]: a public client needs redirectURIs", i)
		}
	}
	return nil
}
