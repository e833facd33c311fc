package serve

import (
	"errors"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/render"
)

func vars(m map[string]string) func(string) string {
	return func(k string) string {
		if k == "STOREFLEET_SEED_DIR" && m[k] == "" {
			return filepath.Join("..", "..", "fleet")
		}
		return m[k]
	}
}

// A registry with a port is part of the repository, not the tag: the tag is what
// follows the last colon, and only if no slash follows it.
func TestMedusaImage(t *testing.T) {
	for ref, want := range map[string]render.Image{
		"ghcr.io/acme/medusa:2.8.0":                 {Repository: "ghcr.io/acme/medusa", Tag: "2.8.0"},
		"localhost:5000/storefleet/medusa:0.1.0":    {Repository: "localhost:5000/storefleet/medusa", Tag: "0.1.0"},
		"registry.localhost/storefleet/medusa:main": {Repository: "registry.localhost/storefleet/medusa", Tag: "main"},
	} {
		c, err := parse([]string{"--medusa-image", ref}, vars(nil))
		if err != nil || c.opts.MedusaImage != want {
			t.Errorf("%s: %+v %v, want %+v", ref, c.opts.MedusaImage, err, want)
		}
	}
	for _, ref := range []string{"medusa", "localhost:5000/medusa", "medusa:", ":2.8.0", "ghcr.io/acme/medusa@sha256:0a1b"} {
		if _, err := parse([]string{"--medusa-image", ref}, vars(nil)); err == nil {
			t.Errorf("%s: accepted", ref)
		}
	}
}

// Every problem is reported at once, each by the flag (or variable) that has it, so
// one failed start is enough to fix them all.
func TestCheckReportsEveryProblem(t *testing.T) {
	_, err := parse([]string{"--chart-source", "oci", "--medusa-image", "medusa", "--log-format", "xml",
		"--log-level", "loud", "--shutdown-grace", "-1s", "--write-timeout", "2m", "--publish-interval", "0s", "--seed-dir", "/nonexistent/fleet",
		"--internal-listen", "metrics"},
		vars(map[string]string{"STOREFLEET_FLEET_SSH_KEY_FILE": "/nonexistent/key", "STOREFLEET_SHARD_TIMEOUT": "soon", "STOREFLEET_METRICS_TENANTS": "many"}))
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("want a *UsageError, got %T %v", err, err)
	}
	for _, want := range []string{"--chart-oci-url", "--medusa-image", "--log-format", "--log-level", "--shutdown-grace",
		"--write-timeout", "--publish-interval", "seed skeleton /nonexistent/fleet", "STOREFLEET_FLEET_SSH_KEY_FILE", "STOREFLEET_SHARD_TIMEOUT",
		"--internal-listen", "STOREFLEET_METRICS_TENANTS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	if !regexp.MustCompile(`^\d+ problems in the configuration:\n  `).MatchString(err.Error()) {
		t.Errorf("want one problem a line:\n%v", err)
	}
	// The flag package's own errors (and -h) are usage errors too.
	if _, err := parse([]string{"-h"}, vars(nil)); !errors.As(err, &ue) || !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// The defaults, and a configuration like the production chart's, pass; what check
// derives is what serve then uses.
func TestCheckAcceptsGoodConfigurations(t *testing.T) {
	c, err := parse(nil, vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.url != filepath.Join(".data", "fleet.git") || c.grace.String() != "30s" || c.opts.Chart.Kind != render.SourceHelmRepository ||
		c.kube.artifactsListen != "127.0.0.1:9091" {
		t.Errorf("defaults: url %s grace %s chart %+v artifacts-listen %s", c.url, c.grace, c.opts.Chart, c.kube.artifactsListen)
	}
	c, err = parse([]string{"--fleet-url", "https://github.com/acme/fleet.git", "--chart-source", "oci",
		"--chart-oci-url", "oci://ghcr.io/acme/charts", "--listen", ":8080", "--base-domain", "shops.acme.com",
		"--cluster", "prod-eu", "--store-ingress-class", "nginx", "--store-cluster-issuer", "letsencrypt",
		"--artifact-url", "http://storefleet-gitops-api.storefleet.svc:9091", "--artifacts-listen", ":9091",
		"--auth-config", writeAuthConfig(t, oidcConfig)},
		vars(map[string]string{"STOREFLEET_SEED_DIR": "/nonexistent"}))
	if err != nil {
		t.Fatal(err) // the seed dir only matters for the embedded repository
	}
	if c.url != "https://github.com/acme/fleet.git" || c.opts.Chart.URL != "oci://ghcr.io/acme/charts" || c.opts.BaseDomain != "shops.acme.com" ||
		c.kube.artifactsListen != ":9091" {
		t.Errorf("%+v", c)
	}
}

// /metrics is never on the API's port: the same address for both is refused, and
// so is a tenant cap out of range.
func TestInternalListenIsNotTheAPIs(t *testing.T) {
	_, err := parse([]string{"--listen", "127.0.0.1:8080", "--internal-listen", "127.0.0.1:8080", "--metrics-tenants", "5000"}, vars(nil))
	for _, want := range []string{"must not be the API's --listen", "--metrics-tenants must be from 0 to 1000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	c, err := parse([]string{"--internal-listen", "none"}, vars(nil))
	if err != nil || c.internalListen != "none" || !c.internalListenSet {
		t.Fatalf("--internal-listen none: %+v %v", c.internalListen, err)
	}
	if c, err := parse(nil, vars(nil)); err != nil || c.internalListen != "127.0.0.1:9090" || c.internalListenSet || c.metricsTenants != 50 {
		t.Fatalf("defaults: %q set=%v tenants=%d %v", c.internalListen, c.internalListenSet, c.metricsTenants, err)
	}
}
