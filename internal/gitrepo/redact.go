package gitrepo

import (
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/storefleet/storefleet/internal/store"
)

// A remote URL may carry credentials (https://user:token@host/…, or a token as the user
// name, as GitHub accepts), and errors travel far: into Results, logs, and the body of
// a 503 from /readyz. So no error or log line of this package prints the URL as given,
// and errors from below (go-git, net/http) are scrubbed too: net/http masks a password
// in the URLs it prints but keeps the user name, and go-git prints endpoints with the
// credentials path-escaped.

// redactor knows one remote URL's printable form and the credentials it holds.
type redactor struct {
	raw, shown string
	// secrets are replaced wherever they appear; users only where a URL puts them
	// ("user@", "user:"), so a short user name does not blank out ordinary words.
	secrets, users []string
}

func newRedactor(raw string) redactor {
	x := redactor{raw: raw, shown: raw}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		// Not a URL with userinfo: a path, or scp-like user@host:path, whose user is
		// an SSH login name ("git"), not a credential. But a URL whose password holds
		// an unescaped "/" or "#" does not parse (or parses into a wrong host and a
		// path), and its error quotes it: whatever sits between "//" and the last "@"
		// is hidden, at worst a path with an "@" in it.
		if i := strings.Index(raw, "//"); i >= 0 {
			if j := strings.LastIndex(raw, "@"); j > i+2 {
				info := raw[i+2 : j]
				x.secrets = append(x.secrets, info)
				// The parser's error quotes pieces of it ("invalid port").
				for _, f := range strings.FieldsFunc(info, func(r rune) bool { return strings.ContainsRune(":/?#", r) }) {
					if len(f) >= 4 {
						x.secrets = append(x.secrets, f)
					}
				}
				x.secrets = longestFirst(x.secrets)
				x.shown = raw[:i+2] + "xxxxx" + raw[j:]
			}
		}
		return x
	}
	user := u.User.Username()
	pass, hasPass := u.User.Password()
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		// Over HTTP the user name is as likely a token as a name: hide it all.
		u.User = url.User("xxxxx")
		x.users = escapes(user)
	default:
		if hasPass {
			u.User = url.UserPassword(user, "xxxxx")
		}
	}
	if hasPass {
		x.secrets = append(x.secrets, escapes(pass)...)
	}
	if info := userinfo(raw); info != "" {
		x.secrets = append(x.secrets, info) // as written, whatever its escaping
	}
	x.shown = u.String()
	x.secrets = longestFirst(x.secrets)
	x.users = longestFirst(x.users)
	return x
}

// escapes lists s as written and in the escapings a URL printer may use.
func escapes(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s, url.PathEscape(s), url.QueryEscape(s), url.User(s).String()}
}

// userinfo returns what stands between "//" and the last "@" of the authority of a
// URL-like string, "" if nothing does.
func userinfo(raw string) string {
	i := strings.Index(raw, "//")
	if i < 0 {
		return ""
	}
	auth := raw[i+2:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	if j := strings.LastIndex(auth, "@"); j > 0 {
		return auth[:j]
	}
	return ""
}

func longestFirst(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// text returns s with the URL in its printable form and every credential masked.
func (x redactor) text(s string) string {
	if x.raw != x.shown {
		s = strings.ReplaceAll(s, x.raw, x.shown)
	}
	for _, v := range x.secrets {
		s = strings.ReplaceAll(s, v, "xxxxx")
	}
	for _, v := range x.users {
		s = strings.ReplaceAll(s, v+"@", "xxxxx@")
		s = strings.ReplaceAll(s, v+":", "xxxxx:")
	}
	return s
}

// err returns err unchanged when its text holds no credential, otherwise an error
// with the masked text that still answers errors.Is for everything err wraps. It does
// not unwrap: what it wraps would print the credential.
func (x redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := x.text(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// As finds a *store.Error (whose message is written to be shown) under the masked
// text; no other type, since most print the URL they hold (*url.Error).
func (e *redactedError) As(target any) bool {
	t, ok := target.(**store.Error)
	return ok && errors.As(e.err, t)
}

// Redactor hides one remote URL's credentials, and any other secrets it is given (the
// password or token the environment supplies), in text and errors. It is the one
// definition of redaction: serve uses it for its own logs and start-up errors, so
// what this package scrubs and what serve scrubs cannot drift apart.
type Redactor struct {
	x     redactor
	extra []string
}

// NewRedactor returns a Redactor for url and secrets (empty ones are ignored; ones
// shorter than four characters too, since masking them would garble ordinary words
// and they are no secret worth the name).
func NewRedactor(url string, secrets ...string) Redactor {
	var extra []string
	for _, s := range secrets {
		if len(s) >= 4 {
			extra = append(extra, escapes(s)...)
		}
	}
	return Redactor{x: newRedactor(url), extra: longestFirst(extra)}
}

// URL is the URL as it may be shown: without a password, and over HTTP without the
// user name either.
func (r Redactor) URL() string { return r.x.shown }

// HasCredentials reports whether the URL itself carries a secret.
func (r Redactor) HasCredentials() bool { return len(r.x.secrets) > 0 || len(r.x.users) > 0 }

// Text returns s with every credential masked.
func (r Redactor) Text(s string) string {
	s = r.x.text(s)
	for _, v := range r.extra {
		s = strings.ReplaceAll(s, v, "xxxxx")
	}
	return s
}

// Err returns err unchanged when its text holds no credential, otherwise an error
// with the masked text that still answers errors.Is and errors.As for what err wraps.
func (r Redactor) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := r.Text(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}
