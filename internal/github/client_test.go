package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/github"
	"github.com/storefleet/storefleet/internal/store"
)

// With GitHub App credentials every call carries an installation token, renewed
// before it expires: here each token lives 30 s, inside ghinstallation's one-minute
// margin, so it has expired by the next call — also between the calls of one
// request (list, create, labels) — and the request still succeeds.
func TestGitHubAppTokensRenewedMidRequest(t *testing.T) {
	s := newStack(t)
	s.gh.tokenTTL = 30 * time.Second
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	w := s.newWriterWith(t, github.Credentials{AppID: 7, InstallationID: 42, PrivateKeyFile: keyFile})
	svc := s.newService(t, w)
	out, err := svc.Create(context.Background(), premium("app"), meta("req-app"))
	if err != nil || out.State != store.RequestAwaitingApproval {
		t.Fatalf("%+v, %v", out, err)
	}
	s.gh.mu.Lock()
	defer s.gh.mu.Unlock()
	if s.gh.appTokens < 3 {
		t.Fatalf("%d installation tokens for three calls with a token expired before each", s.gh.appTokens)
	}
	seen := map[string]bool{}
	for _, a := range s.gh.auth {
		if a == "" {
			t.Fatal("a call without credentials")
		}
		seen[a] = true
	}
	if !seen["token ghs_installation_1"] || !seen["token ghs_installation_2"] {
		t.Fatalf("calls not made with the renewed tokens: %v", seen)
	}
	// The private key's bytes appear in no error of the path.
	if _, err := github.NewClient(s.gh.srv.URL, github.Credentials{AppID: 7, InstallationID: 42, PrivateKeyFile: filepath.Join(t.TempDir(), "missing.pem")}, nil); err == nil {
		t.Fatal("a missing key file is accepted")
	}
}
