package testidp

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The development configuration `make idp-run` serves stays loadable.
func TestDevConfigLoads(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("testdata", "dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin || len(cfg.Users) != 2 || len(cfg.Clients) != 2 {
		t.Fatalf("%+v", cfg)
	}
}

func TestConfigRefused(t *testing.T) {
	for name, tc := range map[string]struct{ json, want string }{
		"unknown field":      {`{"audience":"a","user":[]}`, "unknown field"},
		"no audience":        {`{}`, "audience"},
		"user twice":         {`{"audience":"a","users":[{"name":"u","password":"p"},{"name":"u","password":"q"}]}`, "users[1].name"},
		"public no redirect": {`{"audience":"a","clients":[{"id":"c"}]}`, "clients[0]"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.json")
			if err := os.WriteFile(path, []byte(tc.json), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

// The IdP binds loopback only.
func TestServeRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		err := Serve(context.Background(), Config{Listen: addr, Audience: "a"}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) {})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("%s: %v", addr, err)
		}
	}
}
