package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedactor(t *testing.T) {
	for _, tc := range []struct {
		url, shown string
		hidden     []string
	}{
		{"https://fleet:p%40ss@git.example.com/fleet.git", "https://xxxxx@git.example.com/fleet.git", []string{"p%40ss", "p@ss", "fleet:"}},
		{"https://ghp_token@github.com/acme/fleet.git", "https://xxxxx@github.com/acme/fleet.git", []string{"ghp_token"}},
		{"ssh://git:hunter2@git.example.com/fleet.git", "ssh://git:xxxxx@git.example.com/fleet.git", []string{"hunter2"}},
		{"ssh://git@git.example.com/fleet.git", "ssh://git@git.example.com/fleet.git", nil},
		{"git@github.com:acme/fleet.git", "git@github.com:acme/fleet.git", nil},
		{"/data/fleet.git", "/data/fleet.git", nil},
		{"https://u:s3cret@host:bad/x", "https://xxxxx@host:bad/x", []string{"s3cret"}},
		// Unescaped "/" in the password: no parse, or a parse into host "u", port 1234.
		{"https://u:s3cret/pw@host/x", "https://xxxxx@host/x", []string{"s3cret", "pw@"}},
		{"https://u:1234/pw@host/x", "https://xxxxx@host/x", []string{"1234/pw"}},
	} {
		x := newRedactor(tc.url)
		if x.shown != tc.shown {
			t.Errorf("%s shown as %s, want %s", tc.url, x.shown, tc.shown)
		}
		msg := fmt.Sprintf("fetch %s: Get %q: refused; user %s", tc.url, strings.Replace(tc.url, "://", "://", 1), tc.url)
		err := x.err(fmt.Errorf("%s: %w", msg, context.DeadlineExceeded))
		for _, h := range tc.hidden {
			if strings.Contains(err.Error(), h) {
				t.Errorf("%s: %q shows in %v", tc.url, h, err)
			}
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: the scrubbed error lost what it wraps", tc.url)
		}
	}
	// The user name is masked where a URL puts it, not in ordinary words.
	x := newRedactor("https://fleet:pw@host/fleet.git")
	if got := x.text("Get \"https://fleet:***@host/fleet.git/info/refs\""); got != "Get \"https://xxxxx:***@host/fleet.git/info/refs\"" {
		t.Errorf("masked: %s", got)
	}
}

// withUser puts userinfo into an http URL.
func withUser(t *testing.T, raw string, user *url.Userinfo) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = user
	return u.String()
}

// Credentials in the remote URL appear in no error and no log line (a /readyz 503
// shows its error to anyone), nor in the clone's config.
func TestCredentialsStayOutOfErrors(t *testing.T) {
	const pass, wrong, token = "s3cret-Pass/w0rd", "wr0ng-Pass", "ghp_T0KEN-as-user"
	// Pieces of each: a URL printer may escape the rest, a parser quote a fragment.
	secrets := []string{"s3cret", "w0rd", "wr0ng", "T0KEN"}
	var logs lockedBuf
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error shows %q: %v", what, s, err)
			}
		}
		t.Logf("%s: %v", what, err)
	}
	srv, plain := serveFleet(t, "fleet", pass)
	good := withUser(t, plain, url.UserPassword("fleet", pass))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := Open(ctx, Options{URL: withUser(t, plain, url.UserPassword("fleet", wrong))})
	check(t, "wrong password", err)
	closed := "http://127.0.0.1:1/fleet.git"
	_, err = Open(ctx, Options{URL: withUser(t, closed, url.User(token))})
	check(t, "token as user, nothing listening", err)
	_, err = Open(ctx, Options{URL: withUser(t, closed, url.UserPassword("fleet", pass))})
	check(t, "password, nothing listening", err)
	_, err = Open(ctx, Options{URL: "http://fleet:" + pass + "@127.0.0.1:bad/fleet.git"})
	check(t, "URL that does not parse", err)

	dir := filepath.Join(t.TempDir(), "clone.git")
	r, err := Open(ctx, Options{URL: good, Dir: dir, Retries: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open with the right credentials in the URL: %v", err)
	}
	defer r.Close()
	mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "")))
	if b, err := os.ReadFile(filepath.Join(dir, "config")); err != nil || strings.Contains(string(b), "s3cret") {
		t.Errorf("the clone's config holds the password: %v\n%s", err, b)
	}

	srv.Close()
	check(t, "Writable, remote gone", r.Writable(ctx))
	check(t, "Refresh, remote gone", r.Refresh(ctx))
	check(t, "Submit, remote gone", r.Submit(ctx, change("local", "late", ActionCreate, 1, "")).Err)
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log shows %q:\n%s", s, logs.String())
		}
	}
}
