package apitoken

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

func newToken(t *testing.T) (string, string) {
	t.Helper()
	tok, sum, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return tok, sum
}

func write(t *testing.T, path string, entries ...Entry) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "- name: %s\n  tenant: %q\n  role: %s\n  sha256: %s\n", e.Name, e.Tenant, e.Role, e.SHA256)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// open opens path with the re-read interval at zero, so each Authenticate sees the file as
// it is now and the tests need no waiting.
func open(t *testing.T, path string, log *slog.Logger) *File {
	t.Helper()
	f, err := Open(path, log)
	if err != nil {
		t.Fatal(err)
	}
	f.every = 0
	return f
}

func wantUnauthorized(t *testing.T, f *File, tok string) {
	t.Helper()
	_, err := f.Authenticate(context.Background(), tok)
	if store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Fatalf("want unauthorized, got %v", err)
	}
	if strings.Contains(err.Error(), tok) {
		t.Fatal("the error carries the token")
	}
}

func wantSubject(t *testing.T, f *File, tok, subject string) store.Identity {
	t.Helper()
	id, err := f.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if id.Subject != subject {
		t.Fatalf("subject %q, want %q", id.Subject, subject)
	}
	return id
}

func TestGenerate(t *testing.T) {
	a, ha := newToken(t)
	b, _ := newToken(t)
	if !strings.HasPrefix(a, Prefix) || len(a) != 47 || a == b || ha != Hash(a) || len(ha) != 64 {
		t.Fatalf("token %q (hash %s)", a, ha)
	}
}

func TestAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	tok, sum := newToken(t)
	write(t, path, Entry{Name: "ci-shop-a", Tenant: "shop-a", Role: store.RoleEditor, SHA256: sum})
	f := open(t, path, nil)

	id := wantSubject(t, f, tok, "token:ci-shop-a")
	if id.Method != store.AuthToken || id.Grants["shop-a"] != store.RoleEditor || len(id.Grants) != 1 || id.Groups != nil {
		t.Fatalf("identity %+v", id)
	}

	unknown, _ := newToken(t)
	wantUnauthorized(t, f, unknown)
	wantUnauthorized(t, f, tok[:len(tok)-1])
	wantUnauthorized(t, f, tok+"A")

	for _, other := range []string{"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "", "SFT_" + tok[4:], "bearer"} {
		if _, err := f.Authenticate(context.Background(), other); !errors.Is(err, store.ErrNotMine) {
			t.Fatalf("%q: want ErrNotMine, got %v", other, err)
		}
	}
}

// Issuing, rotating and revoking are edits of the file, seen without a restart.
func TestRotateAndRevokeWithoutRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	old, oldSum := newToken(t)
	keep, keepSum := newToken(t)
	write(t, path, Entry{"deploy", "shop-a", store.RoleEditor, oldSum}, Entry{"reader", "*", store.RoleViewer, keepSum})
	f := open(t, path, nil)
	wantSubject(t, f, old, "token:deploy")

	// Rotation: the new token is added beside the old one, then the old one removed.
	fresh, freshSum := newToken(t)
	write(t, path, Entry{"deploy", "shop-a", store.RoleEditor, oldSum}, Entry{"deploy-2", "shop-a", store.RoleEditor, freshSum}, Entry{"reader", "*", store.RoleViewer, keepSum})
	wantSubject(t, f, fresh, "token:deploy-2")
	wantSubject(t, f, old, "token:deploy")
	write(t, path, Entry{"deploy-2", "shop-a", store.RoleEditor, freshSum}, Entry{"reader", "*", store.RoleViewer, keepSum})
	wantUnauthorized(t, f, old)
	wantSubject(t, f, fresh, "token:deploy-2")
	wantSubject(t, f, keep, "token:reader")

	// Revocation.
	write(t, path, Entry{"deploy-2", "shop-a", store.RoleEditor, freshSum})
	wantUnauthorized(t, f, keep)
	wantSubject(t, f, fresh, "token:deploy-2")
}

// A Kubernetes Secret volume updates by pointing the ..data symlink at a new directory; the
// file's path never changes.
func TestSecretVolumeSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	a, aSum := newToken(t)
	b, bSum := newToken(t)
	version := func(name string, e Entry) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "tokens.yaml"), e)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_06_01", Entry{"a", "shop-a", store.RoleViewer, aSum})
	if err := os.Symlink(filepath.Join("..data", "tokens.yaml"), filepath.Join(dir, "tokens.yaml")); err != nil {
		t.Fatal(err)
	}
	f := open(t, filepath.Join(dir, "tokens.yaml"), nil)
	wantSubject(t, f, a, "token:a")
	wantUnauthorized(t, f, b)

	version("..2026_12_06_02", Entry{"b", "shop-a", store.RoleViewer, bSum})
	wantSubject(t, f, b, "token:b")
	wantUnauthorized(t, f, a)
}

func TestBadFileRefusedAtOpen(t *testing.T) {
	_, sum := newToken(t)
	for name, tc := range map[string]struct {
		yaml   string
		fields []string
	}{
		"unknown field": {"tokens:\n- name: a\n  tenant: t\n  role: viewer\n  sha256: " + sum + "\n  token: sft_x\n", []string{"tokens/yaml"}},
		"not yaml":      {"tokens: [", []string{"tokens/yaml"}},
		"every rule": {"tokens:\n- name: Bad Name\n  tenant: Shop_A\n  role: owner\n  sha256: abc\n", []string{
			"tokens[0].name/tokenName", "tokens[0].tenant/dns1123Label", "tokens[0].role/oneOf", "tokens[0].sha256/sha256Hex"}},
		"empty entry": {"tokens:\n- {}\n", []string{
			"tokens[0].name/tokenName", "tokens[0].tenant/dns1123Label", "tokens[0].role/oneOf", "tokens[0].sha256/sha256Hex"}},
		"duplicates": {"tokens:\n- {name: a, tenant: t, role: viewer, sha256: " + sum + "}\n- {name: a, tenant: t, role: admin, sha256: " + sum + "}\n", []string{
			"tokens[1].name/unique", "tokens[1].sha256/unique"}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, nil)
			if store.ErrorCode(err) != store.EINVALID {
				t.Fatalf("want invalid, got %v", err)
			}
			var got []string
			for _, fe := range store.FieldErrors(err) {
				got = append(got, fe.Field+"/"+fe.Rule)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// A file broken by a change leaves the last good set in force, and the log says why.
func TestBadFileAfterChangeKeepsLastGoodSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	tok, sum := newToken(t)
	write(t, path, Entry{"deploy", "shop-a", store.RoleEditor, sum})
	var logs bytes.Buffer
	f := open(t, path, slog.New(slog.NewTextHandler(&logs, nil)))

	if err := os.WriteFile(path, []byte("tokens:\n- {name: deploy, tenant: shop-a, role: superuser, sha256: "+sum+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantSubject(t, f, tok, "token:deploy")
	if !strings.Contains(logs.String(), "keeping the last good set") || !strings.Contains(logs.String(), "tokens[0].role") {
		t.Fatalf("the log does not say why the file was refused:\n%s", logs.String())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	wantSubject(t, f, tok, "token:deploy")
	if strings.Contains(logs.String(), tok) {
		t.Fatal("the log carries a token")
	}

	// Fixed again: the fix is taken.
	write(t, path)
	wantUnauthorized(t, f, tok)
}
