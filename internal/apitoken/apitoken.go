package apitoken

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// Prefix marks a Storefleet API token, so that it is told from a JWT without parsing, and so
// that secret scanners can recognise a leaked one.
const Prefix = "sft_"

// tokenLen is the length of Prefix + base64url(32 bytes).
var tokenLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(32)

// Generate returns a new token and the SHA-256 (hex) to put in the tokens file. The token
// itself is shown once to whoever asked for it and kept nowhere.
func Generate() (token, sha256hex string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = Prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token), nil
}

// Hash is the hex SHA-256 of the whole token, as the file stores it. A plain hash is enough
// (no salt, no slow KDF): the token is 256 random bits, so there is no dictionary to try.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Entry is one token in the file.
type Entry struct {
	Name   string     `json:"name"`
	Tenant string     `json:"tenant"`
	Role   store.Role `json:"role"`
	SHA256 string     `json:"sha256"`
}

type fileFormat struct {
	Tokens []Entry `json:"tokens"`
}

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
	tenantPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	hashPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Check validates one entry; field names are prefixed with at (e.g. "tokens[2]").
func (e Entry) Check(at string) []store.FieldError {
	var fe []store.FieldError
	add := func(field, rule, msg string) {
		fe = append(fe, store.FieldError{Field: at + field, Rule: rule, Message: msg})
	}
	if !namePattern.MatchString(e.Name) {
		add("name", "tokenName", "a token name is 1 to 63 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
	}
	if e.Tenant != store.AllTenants && !tenantPattern.MatchString(e.Tenant) {
		add("tenant", "dns1123Label", `a tenant is a DNS-1123 label, or "*" for every tenant`)
	}
	if !slices.Contains(store.Roles, e.Role) {
		add("role", "oneOf", fmt.Sprintf("the role is one of %v", store.Roles))
	}
	if !hashPattern.MatchString(e.SHA256) {
		add("sha256", "sha256Hex", "the SHA-256 of the token, 64 lower-case hex digits (gitops-api token prints it)")
	}
	return fe
}

// Parse reads and validates a tokens file: unknown fields are refused, every entry is
// checked, names and hashes are unique. All problems are reported at once.
func Parse(data []byte) (map[string]Entry, error) {
	var f fileFormat
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, &store.Error{Code: store.EINVALID, Message: "the API tokens file is not valid",
			Fields: []store.FieldError{{Field: "tokens", Rule: "yaml", Message: err.Error()}}}
	}
	var fe []store.FieldError
	byHash := make(map[string]Entry, len(f.Tokens))
	names := map[string]bool{}
	for i, e := range f.Tokens {
		at := fmt.Sprintf("tokens[%d].", i)
		fe = append(fe, e.Check(at)...)
		if names[e.Name] {
			fe = append(fe, store.FieldError{Field: at + "name", Rule: "unique", Message: fmt.Sprintf("the name %q is used twice", e.Name)})
		}
		names[e.Name] = true
		if _, dup := byHash[e.SHA256]; dup && e.SHA256 != "" {
			fe = append(fe, store.FieldError{Field: at + "sha256", Rule: "unique", Message: "the same token is listed twice"})
		}
		byHash[e.SHA256] = e
	}
	if len(fe) > 0 {
		return nil, &store.Error{Code: store.EINVALID, Message: "the API tokens file is not valid", Fields: fe}
	}
	return byHash, nil
}

// File is the tokens file, re-read when it changes.
type File struct {
	path string
	log  *slog.Logger
	// every is how often at most the file is looked at again (on use, not on a timer, so
	// an idle API reads nothing).
	every time.Duration

	tokens atomic.Pointer[map[string]Entry]
	mu     sync.Mutex // one reload at a time
	sum    [32]byte   // of the content last looked at, good or bad
	last   time.Time  // when the file was last looked at
}

// Open reads path; a missing or invalid file is an error (the API must not start with a
// token file it cannot read).
func Open(path string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File{path: path, log: log.With("file", path), every: time.Second}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("API tokens file: %w", err)
	}
	tokens, err := Parse(data)
	if err != nil {
		return nil, err
	}
	f.tokens.Store(&tokens)
	f.sum = sha256.Sum256(data)
	f.last = time.Now()
	return f, nil
}

// refresh re-reads the file when it is due. The content is compared, not the modification
// time: a Kubernetes Secret volume replaces the file by swapping a symlink to a new directory,
// and a hand edit may keep the size and land in the same clock tick. Reading a small file
// once a second costs nothing next to a request.
func (f *File) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.last) < f.every {
		return
	}
	f.last = now
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.log.Error("API tokens file unreadable; keeping the last good set", "err", err)
		return
	}
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], f.sum[:]) {
		return
	}
	f.sum = sum
	tokens, err := Parse(data)
	if err != nil {
		f.log.Error("API tokens file refused after a change; keeping the last good set", "err", err)
		return
	}
	f.tokens.Store(&tokens)
	f.log.Info("API tokens file reloaded", "tokens", len(tokens))
}

// Authenticate implements store.Authenticator.
func (f *File) Authenticate(_ context.Context, token string) (store.Identity, error) {
	if !strings.HasPrefix(token, Prefix) {
		return store.Identity{}, store.ErrNotMine
	}
	f.refresh()
	// The lookup is by the token's hash. A map lookup is not constant-time, but what its
	// timing could leak is how much of a stored hash the presented token's hash matches; an
	// attacker cannot steer SHA-256 outputs, so that tells nothing about any token.
	e, ok := (*f.tokens.Load())[Hash(token)]
	if len(token) != tokenLen || !ok {
		f.log.Info("API token refused", "reason", "unknown or revoked")
		return store.Identity{}, store.Errorf(store.EUNAUTHORIZED, "The bearer token is not valid.")
	}
	return store.Identity{
		Subject: "token:" + e.Name,
		Method:  store.AuthToken,
		Grants:  map[string]store.Role{e.Tenant: e.Role},
	}, nil
}

var _ store.Authenticator = (*File)(nil)
