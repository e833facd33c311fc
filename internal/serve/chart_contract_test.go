package serve

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/charts"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The platform chart (charts/storefleet) configures gitops-api through STOREFLEET_*
// variables. A name serve does not read is a setting that silently does nothing in a
// real cluster, so every name the chart sets must be one serve documents, and every
// literal value it sets must parse.
func TestPlatformChartEnvIsWhatServeReads(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join("..", "..")
	helm, err := charts.FindHelm(ctx, root)
	if err != nil {
		t.Fatalf("the platform chart contract needs helm: %v", err)
	}

	// What serve --help shows: the text around the flags and every flag's usage.
	c := NewCommand("gitops-api serve", func(string) string { return "" })
	help := c.Help + c.Env
	c.Flags.VisitAll(func(f *flag.Flag) { help += f.Usage + "\n" })
	known := map[string]bool{}
	for _, n := range regexp.MustCompile(`STOREFLEET_[A-Z0-9_]+`).FindAllString(help, -1) {
		known[n] = true
	}
	if len(known) < 10 {
		t.Fatalf("found only %d STOREFLEET_* names in serve --help:\n%s", len(known), help)
	}

	// Production's values serving two more clusters, one with its own artifact URL.
	extra := filepath.Join(t.TempDir(), "values-extra-clusters.yaml")
	prod, err := os.ReadFile(filepath.Join(root, "charts", "storefleet", "values-prod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extra, append(prod, []byte(`
clusters:
  extra:
    - name: eu-west
      kubeconfigSecret: {name: eu-west-kubeconfig, key: kubeconfig}
      artifactURL: https://artifacts.example.com:9443
    - name: us
      kubeconfigSecret: {name: us-kubeconfig, key: config}
`)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, values := range []string{"", "values-local.yaml", "values-prod.yaml", extra} {
		name := values
		if filepath.IsAbs(values) {
			name = filepath.Base(values)
		}
		t.Run("values="+name, func(t *testing.T) {
			o := charts.TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			switch {
			case filepath.IsAbs(values):
				o.ValuesFiles = []string{values}
			case values != "":
				o.ValuesFiles = []string{filepath.Join(root, "charts", "storefleet", values)}
			}
			objs, err := helm.Template(ctx, filepath.Join(root, "charts", "storefleet"), o)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			var args []string
			seen := 0
			for _, obj := range objs {
				if obj.GetKind() != "Deployment" {
					continue
				}
				containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					cargs, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
					args = append(args, chartArgs(t, objs, cargs)...)
					vars, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
					for _, v := range vars {
						m := v.(map[string]any)
						name, _ := m["name"].(string)
						if !strings.HasPrefix(name, "STOREFLEET_") {
							continue
						}
						seen++
						if !known[name] {
							t.Errorf("the chart sets %s, which gitops-api serve does not read", name)
						}
						if val, ok := m["value"].(string); ok {
							env[name] = val
						}
					}
				}
			}
			if seen == 0 {
				t.Fatal("no STOREFLEET_* variables in the chart's Deployment")
			}
			// parse checks the whole configuration (log settings, medusa image, chart
			// source, names), as serve does before it starts anything.
			_, err = parse(args, func(k string) string { return env[k] })
			if !saysWhoMayUse(args, env) {
				// A chart with no auth values starts no API on the pod's address: serve's
				// safe default must refuse it, naming what to set.
				if err == nil || !strings.Contains(err.Error(), "--auth-config") || !strings.Contains(err.Error(), "--insecure-allow-unauthenticated-network") {
					t.Errorf("the chart configures no authentication, and serve does not refuse to listen on %q: %v", env["STOREFLEET_LISTEN"], err)
				}
				return
			}
			if err != nil {
				t.Errorf("serve refuses the chart's settings: %v", err)
			}
			if values == extra {
				c, _ := parse(args, func(k string) string { return env[k] })
				got := map[string]string{}
				for _, sc := range c.kube.clusters {
					got[sc.name] = sc.artifactURL
				}
				if len(got) != 3 || got["eu-west"] != "https://artifacts.example.com:9443" || got["us"] != "" {
					t.Errorf("serve serves %v from the chart's clusters.extra", got)
				}
			}
		})
	}
}

// The shard layout comes from flags and variables; the flag wins, "none" empties the
// dependency list, and a duration that does not parse or is not positive stops
// serve before it creates any Kustomization.
func TestShardLayoutSettings(t *testing.T) {
	// The embedded fleet repository is seeded from the repository's fleet/, which
	// serve checks for before it starts.
	env := func(m map[string]string) func(string) string {
		return func(k string) string {
			if k == "STOREFLEET_SEED_DIR" {
				return filepath.Join("..", "..", "fleet")
			}
			return m[k]
		}
	}
	c, err := parse(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.kube.shards; got.Interval.Duration.String() != "1h0m0s" || len(got.DependsOn) != 1 || got.DependsOn[0] != "infrastructure" || got.DecryptionSecret != "" {
		t.Errorf("defaults: %+v", got)
	}
	c, err = parse([]string{"--shard-interval", "2h", "--shard-depends-on", "infra, crds"}, env(map[string]string{
		"STOREFLEET_SHARD_INTERVAL": "3h", "STOREFLEET_SHARD_RETRY_INTERVAL": "2m", "STOREFLEET_SHARD_TIMEOUT": "5m",
		"STOREFLEET_SHARD_DECRYPTION_SECRET": "sops-age",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.kube.shards
	if got.Interval.Duration.String() != "2h0m0s" || got.RetryInterval.Duration.String() != "2m0s" || got.Timeout.Duration.String() != "5m0s" ||
		strings.Join(got.DependsOn, "|") != "infra|crds" || got.DecryptionSecret != "sops-age" {
		t.Errorf("flags and variables: %+v", got)
	}
	c, err = parse(nil, env(map[string]string{"STOREFLEET_SHARD_DEPENDS_ON": "none"}))
	if err != nil || len(c.kube.shards.DependsOn) != 0 {
		t.Errorf("none: %v %+v", err, c.kube.shards.DependsOn)
	}
	for _, bad := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"STOREFLEET_SHARD_INTERVAL": "an hour"}, "STOREFLEET_SHARD_INTERVAL"},
		{[]string{"--shard-timeout", "0s"}, nil, "timeout must be positive"},
		{nil, map[string]string{"STOREFLEET_SHARD_RETRY_INTERVAL": "-1m"}, "retry interval must be positive"},
	} {
		if _, err := parse(bad.args, env(bad.env)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: %v, want an error saying %q", bad.args, bad.env, err, bad.want)
		}
	}
	// A flag overrides a variable that does not parse.
	if _, err := parse([]string{"--shard-interval", "1h"}, env(map[string]string{"STOREFLEET_SHARD_INTERVAL": "an hour"})); err != nil {
		t.Errorf("flag over a bad variable: %v", err)
	}
}

// chartArgs are the serve flags of a container's args. The --auth-config file is
// mounted from a ConfigMap of the chart: its content, as rendered, is written where
// the test can read it, so that serve checks the access configuration the chart
// really gives it.
func chartArgs(t *testing.T, objs []*unstructured.Unstructured, args []string) []string {
	t.Helper()
	var out []string
	for _, a := range args {
		if a == "serve" {
			continue
		}
		// A kubeconfig comes from a Secret the chart does not hold: one that loads
		// stands in for it where the test can read it.
		if item, ok := strings.CutPrefix(a, "--cluster-kubeconfig="); ok {
			name, _, _ := strings.Cut(item, "=")
			a = "--cluster-kubeconfig=" + name + "=" + kubeconfigFile(t, "https://"+name+".example.com:6443")
		}
		if path, ok := strings.CutPrefix(a, "--auth-config="); ok {
			key := filepath.Base(path)
			found := false
			for _, o := range objs {
				if o.GetKind() != "ConfigMap" {
					continue
				}
				if body, ok, _ := unstructured.NestedString(o.Object, "data", key); ok {
					local := filepath.Join(t.TempDir(), key)
					if err := os.WriteFile(local, []byte(body), 0o600); err != nil {
						t.Fatal(err)
					}
					a, found = "--auth-config="+local, true
					break
				}
			}
			if !found {
				t.Errorf("--auth-config %s: no ConfigMap of the chart holds %s", path, key)
			}
		}
		out = append(out, a)
	}
	return out
}

// saysWhoMayUse reports whether the chart gives serve an access configuration or
// explicitly turns authentication off for the network.
func saysWhoMayUse(args []string, env map[string]string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--auth-config") || strings.HasPrefix(a, "--insecure-allow-unauthenticated-network") {
			return true
		}
	}
	return env["STOREFLEET_AUTH_CONFIG"] != "" || env["STOREFLEET_INSECURE_ALLOW_UNAUTHENTICATED_NETWORK"] != ""
}
