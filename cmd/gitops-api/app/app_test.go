package app

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
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

// render --shards renders for a fleet of another shard count: the store's folder is
// its shard's at that count, byte for byte what the fleet's writer commits there
// (render.Options.Shards). A count that is not one is a usage error naming the flag,
// not a panic from the layout.
func TestRenderShards(t *testing.T) {
	args := []string{"render", "--name", "shop", "--engine", "woocommerce", "--plan", "basic", "--set-admin-email", "o@example.com"}
	out, stderr, err := run(append(args, "--shards", "16")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	opts := render.LocalOptions()
	opts.Shards = 16
	files, err := render.Store(store.Store{Name: "shop", Engine: store.WooCommerce, Plan: store.Basic,
		Settings: store.Settings{AdminEmail: "o@example.com"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, f := range files {
		want.WriteString("---\n# " + f.Path + "\n" + string(f.Content))
	}
	if out != want.String() {
		t.Fatalf("output differs from render.Store at 16 shards:\n%s", out)
	}
	dir := store.DirIn(store.DefaultCluster, "shop", 16)
	if dir == store.Dir(store.DefaultCluster, "shop") {
		t.Fatalf("shop is in the same folder at 16 and %d shards; pick a name that moves", store.DefaultShards)
	}
	if !strings.Contains(out, "# "+path.Join(dir, render.KustomizationFile)+"\n") {
		t.Fatalf("not in %s:\n%s", dir, out)
	}
	for _, bad := range []string{"100", "8", "0", "many"} {
		_, stderr, err := run(append(args, "--shards", bad)...)
		if ExitCode(err) != 2 || !strings.Contains(stderr, "--shards") {
			t.Errorf("--shards %s: %v %q, want a usage error naming --shards", bad, err, stderr)
		}
	}
}

// render prints every file the fleet repository gets for the store, kustomization.yaml
// included, each after its path, byte for byte as render.Store makes them.
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
	var want, objects strings.Builder
	for _, f := range files {
		want.WriteString("---\n# " + f.Path + "\n" + string(f.Content))
		if path.Base(f.Path) != render.KustomizationFile {
			objects.WriteString("---\n" + string(f.Content))
		}
	}
	if out != want.String() {
		t.Fatalf("output differs from render.Store:\n%s", out)
	}
	kustomization := "# " + path.Join(store.Dir(store.DefaultCluster, "shop"), render.KustomizationFile) + "\n"
	if !strings.Contains(out, kustomization) {
		t.Fatalf("no %q in the output:\n%s", kustomization, out)
	}
	// kustomization.yaml is kustomize's file, not a Kubernetes object: the schema
	// check is for the others.
	if err := k8sschema.Validate([]byte(objects.String())); err != nil {
		t.Fatal(err)
	}
}

func TestRenderStates(t *testing.T) {
	for state, hr := range map[string]bool{"active": true, "retained": false, "purging": false} {
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

// Values that were given and are wrong are each reported by their flag; a default
// made from a wrong name (the domain) is not reported again.
func TestRenderInvalidListsEveryField(t *testing.T) {
	out, stderr, err := run("render", "--name", "Shop_1", "--engine", "magento", "--plan", "gold",
		"--set-admin-email", "nobody", "--set-currency", "euro", "--set-country", "Germany")
	if err == nil || ExitCode(err) != 1 || !errors.Is(err, ErrReported) {
		t.Fatalf("want a reported error with exit code 1, got %v", err)
	}
	if out != "" {
		t.Fatalf("nothing may reach stdout on error, got %q", out)
	}
	for _, want := range []string{"--name:", "(dns1123Label)", "--engine:", "(oneOf)", "--plan:", "--set-admin-email:",
		"(email)", "--set-currency:", "(iso4217)", "--set-country:", "(iso3166)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "domain") {
		t.Errorf("the domain only repeats the name's error:\n%s", stderr)
	}
}

// Without the required flags render says which are missing and what defaults from
// the name, rather than a "required" error for every field made from it.
func TestRenderExplainsRequiredFlagsAndDefaults(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		missing string
		name    string
	}{
		{[]string{"--name", "shop"}, "--engine, --plan, --set-admin-email", "shop"},
		{nil, "--name, --engine, --plan, --set-admin-email", "<name>"},
		{[]string{"--engine", "medusa", "--plan", "basic", "--set-admin-email", "a@b.co"}, "--name", "<name>"},
	} {
		out, stderr, err := run(append([]string{"render"}, tc.args...)...)
		if ExitCode(err) != 2 || !errors.Is(err, ErrReported) || out != "" {
			t.Fatalf("%v: want a reported usage error and no output, got %v %q", tc.args, err, out)
		}
		want := "error: missing required flags: " + tc.missing + "\n" +
			"Required: --name, --engine, --plan, --set-admin-email.\n" +
			"Defaults from the name: --domain " + tc.name + ".stores.localhost, --set-title " + tc.name +
			"; the other flags' defaults are in --help.\n" +
			"Run 'gitops-api render --help' for usage.\n"
		if stderr != want {
			t.Errorf("%v: stderr\n%s\nwant\n%s", tc.args, stderr, want)
		}
	}
	// A wrong value given next to a missing flag is reported in the same run.
	_, stderr, err := run("render", "--name", "shop", "--engine", "magento")
	if ExitCode(err) != 2 || !strings.Contains(stderr, "--engine: engine must be one of") ||
		!strings.Contains(stderr, "missing required flags: --plan, --set-admin-email") {
		t.Errorf("%v\n%s", err, stderr)
	}
}

// Every subcommand answers an unknown flag the same way: one line saying what is
// wrong, one saying where to read more, exit code 2, and nothing else (the flag
// package's full usage is not dumped, and main does not print the error again).
func TestUnknownFlagIsOneLineAndExitCode2(t *testing.T) {
	for _, name := range subcommands(t) {
		out, stderr, err := run(name, "--bogus")
		if ExitCode(err) != 2 || !errors.Is(err, ErrReported) {
			t.Errorf("%s: want a reported usage error, got %v", name, err)
		}
		want := "error: unknown flag: --bogus\nRun 'gitops-api " + name + " --help' for usage.\n"
		if out != "" || stderr != want {
			t.Errorf("%s: stdout %q, stderr %q; want stderr %q", name, out, stderr, want)
		}
	}
	if _, stderr, err := run("render", "--name"); ExitCode(err) != 2 || !strings.HasPrefix(stderr, "error: flag needs an argument: --name\n") {
		t.Errorf("render --name: %v %q", err, stderr)
	}
	if _, stderr, err := run("serve", "--publish-interval", "soon"); ExitCode(err) != 2 ||
		!strings.HasPrefix(stderr, `error: invalid value "soon" for flag --publish-interval: `) {
		t.Errorf("serve --publish-interval soon: %v %q", err, stderr)
	}
}

// subcommands is every registered subcommand; serve and version must be among them.
func subcommands(t *testing.T) []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range []string{"render", "serve", "version"} {
		if _, ok := commands[n]; !ok {
			t.Fatalf("no %s subcommand", n)
		}
	}
	return names
}

// --help goes to stdout and spells every flag --flag, as the README does; the flag
// package would write -flag.
func TestHelpSpellsFlagsWithTwoDashes(t *testing.T) {
	oneDash := regexp.MustCompile(`(?m)^\s*-[a-z][a-z-]+`)
	for _, name := range subcommands(t) {
		out, stderr, err := run(name, "--help")
		if err != nil || stderr != "" {
			t.Fatalf("%s --help: %v %q", name, err, stderr)
		}
		if !strings.Contains(out, "Usage: gitops-api "+name) || !strings.Contains(out, "\n  -h, --help\n") {
			t.Errorf("%s --help:\n%s", name, out)
		}
		if m := oneDash.FindString(out); m != "" {
			t.Errorf("%s --help spells a flag with one dash: %q\n%s", name, m, out)
		}
		if h, _, _ := run(name, "-h"); h != out {
			t.Errorf("%s: -h and --help differ", name)
		}
	}
}

// serve --help documents every flag with its variable and default, and the
// credential variables that have no flag.
func TestServeHelpDocumentsFlagsAndEnv(t *testing.T) {
	out, _, err := run("serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--fleet-url string", "STOREFLEET_FLEET_URL", "STOREFLEET_FLEET_PASSWORD", "STOREFLEET_FLEET_TOKEN",
		`(default "127.0.0.1:8080")`, `(default ".data")`, "--cluster string", "--base-domain string", "STOREFLEET_FLEET_SSH_KEY_FILE",
		"--in-cluster\n", "--shard-interval duration", "(default 1h0m0s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
}

// A mistake in serve's configuration that only shows once the flags are parsed is a
// usage error like an unknown flag, found before serve creates anything.
func TestServeBadConfigurationIsAUsageError(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	out, stderr, err := run("serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--seed-dir", "../../../fleet",
		"--chart-source", "git")
	if ExitCode(err) != 2 || out != "" {
		t.Fatalf("want exit code 2 and no output, got %v %q", err, out)
	}
	want := "error: --chart-source must be helmrepository or oci, not \"git\"\nRun 'gitops-api serve --help' for usage.\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the data dir was created: %v", err)
	}
}

func TestUsage(t *testing.T) {
	out, _, err := run("--help")
	if err != nil || !strings.Contains(out, "render") || !strings.Contains(out, "version") {
		t.Fatalf("help: %v %q", err, out)
	}
	if _, stderr, err := run("frobnicate"); ExitCode(err) != 2 || stderr != "error: unknown command \"frobnicate\"\nRun 'gitops-api --help' for usage.\n" {
		t.Fatalf("unknown command: %v %q", err, stderr)
	}
	if _, stderr, err := run(); ExitCode(err) != 2 || !strings.HasPrefix(stderr, "Usage: gitops-api <command>") {
		t.Fatalf("no command: %v %q", err, stderr)
	}
	if _, _, err := run("render", "--state", "gone", "--name", "shop"); ExitCode(err) != 2 {
		t.Fatalf("bad state: %v", err)
	}
	if _, _, err := run("render", "shop"); ExitCode(err) != 2 {
		t.Fatalf("positional argument: %v", err)
	}
	if out, _, err := run("help", "render"); err != nil || !strings.Contains(out, "--set-admin-email") {
		t.Fatalf("help render: %v %s", err, out)
	}
}
