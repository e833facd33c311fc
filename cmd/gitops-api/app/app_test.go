package app

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/k8sschema"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

func run(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

func TestRender(t *testing.T) {
	out, stderr, err := run("render", "--name", "shop", "--engine", "woocommerce", "--plan", "standard",
		"--set-admin-email", "owner@example.com", "--set-title", "My Shop", "--set-currency", "EUR", "--set-country", "DE")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	files, err := render.Store(store.Store{Name: "shop", Engine: store.WooCommerce, Plan: store.Standard,
		Settings: store.Settings{AdminEmail: "owner@example.com", Title: "My Shop", Currency: "EUR", Country: "DE"}},
		render.LocalOptions())
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, f := range files {
		if !strings.HasSuffix(f.Path, "/kustomization.yaml") {
			want.WriteString("---\n# " + f.Path + "\n" + string(f.Content))
		}
	}
	if out != want.String() {
		t.Fatalf("output differs from render.Store:\n%s", out)
	}
	if err := k8sschema.Validate([]byte(out)); err != nil {
		t.Fatal(err)
	}
}

func TestRenderStates(t *testing.T) {
	for state, hr := range map[string]bool{"live": true, "retained": false, "purge1": false} {
		out, stderr, err := run("render", "--name", "shop", "--engine", "medusa", "--plan", "basic",
			"--set-admin-email", "a@b.co", "--state", state)
		if err != nil {
			t.Fatalf("%s: %v %s", state, err, stderr)
		}
		if strings.Contains(out, "kind: HelmRelease") != hr {
			t.Errorf("%s: HelmRelease present = %v", state, !hr)
		}
	}
}

func TestRenderInvalidListsEveryField(t *testing.T) {
	out, stderr, err := run("render", "--name", "Shop_1", "--engine", "magento", "--plan", "gold",
		"--set-admin-email", "nobody", "--set-currency", "euro", "--set-country", "Germany")
	if err == nil || ExitCode(err) != 1 || !errors.Is(err, ErrReported) {
		t.Fatalf("want a reported error with exit code 1, got %v", err)
	}
	if out != "" {
		t.Fatalf("nothing may reach stdout on error, got %q", out)
	}
	for _, want := range []string{"name:", "(dns1123Label)", "engine:", "(oneOf)", "plan:", "settings.adminEmail:",
		"(email)", "settings.currency:", "(iso4217)", "settings.country:", "(iso3166)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestUsage(t *testing.T) {
	out, _, err := run("--help")
	if err != nil || !strings.Contains(out, "render") {
		t.Fatalf("help: %v %q", err, out)
	}
	if _, _, err := run("frobnicate"); ExitCode(err) != 2 {
		t.Fatalf("unknown command: %v", err)
	}
	if _, _, err := run("render", "--bogus"); ExitCode(err) != 2 {
		t.Fatalf("unknown flag: %v", err)
	}
	if _, _, err := run("render", "--state", "gone", "--name", "shop"); ExitCode(err) != 2 {
		t.Fatalf("bad state: %v", err)
	}
	if _, stderr, err := run("render", "--help"); err != nil || !strings.Contains(stderr, "--set-admin-email") {
		t.Fatalf("render --help: %v %s", err, stderr)
	}
}
