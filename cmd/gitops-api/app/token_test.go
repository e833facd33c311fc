package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/apitoken"
)

// The printed token and entry work together: the entry, pasted into a tokens file, makes
// the API accept the token; the entry never holds the token.
func TestTokenCommand(t *testing.T) {
	var out, errOut strings.Builder
	if err := Run(context.Background(), []string{"token", "--name", "ci-shop-a", "--tenant", "shop-a", "--role", "editor"}, nil, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, apitoken.Prefix) || strings.Contains(out.String(), "sha256") {
		t.Fatalf("stdout should be the token alone: %q", out.String())
	}
	if strings.Contains(errOut.String(), token) {
		t.Fatal("the entry carries the token")
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("tokens:\n"+errOut.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := apitoken.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Authenticate(context.Background(), token)
	if err != nil || id.Subject != "token:ci-shop-a" || id.Grants["shop-a"] != "editor" {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

func TestTokenCommandRefusesBadFlags(t *testing.T) {
	var out, errOut strings.Builder
	err := Run(context.Background(), []string{"token", "--name", "x", "--tenant", "Shop A", "--role", "owner"}, nil, &out, &errOut)
	if ExitCode(err) != 2 || out.Len() != 0 {
		t.Fatalf("exit %d, stdout %q", ExitCode(err), out.String())
	}
	for _, want := range []string{"--tenant", "--role"} {
		if !strings.Contains(errOut.String(), want) {
			t.Fatalf("stderr does not name %s: %s", want, errOut.String())
		}
	}
}
