package charts

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/render"
)

// The shard layout env variables gitops-api reads (internal/serve): the chart always sets
// them all, so gitops-api's own defaults never decide a cluster's layout.
var shardEnv = []string{"STOREFLEET_SHARD_INTERVAL", "STOREFLEET_SHARD_RETRY_INTERVAL", "STOREFLEET_SHARD_TIMEOUT",
	"STOREFLEET_SHARD_DEPENDS_ON", "STOREFLEET_SHARD_DECRYPTION_SECRET", "STOREFLEET_FLUX_SHARDS"}

// shardLayoutFromEnv is the render.ShardLayout gitops-api builds from the chart's env:
// Go durations, a comma-separated dependsOn (empty = none), the Flux namespace.
func shardLayoutFromEnv(t *testing.T, env map[string]string) render.ShardLayout {
	t.Helper()
	for _, name := range append([]string{"STOREFLEET_FLUX_NAMESPACE"}, shardEnv...) {
		if _, ok := env[name]; !ok {
			t.Fatalf("%s is not set", name)
		}
	}
	l := render.ShardLayout{Namespace: env["STOREFLEET_FLUX_NAMESPACE"], DecryptionSecret: env["STOREFLEET_SHARD_DECRYPTION_SECRET"]}
	for name, d := range map[string]*metav1.Duration{
		"STOREFLEET_SHARD_INTERVAL":       &l.Interval,
		"STOREFLEET_SHARD_RETRY_INTERVAL": &l.RetryInterval,
		"STOREFLEET_SHARD_TIMEOUT":        &l.Timeout,
	} {
		v, err := time.ParseDuration(env[name])
		if err != nil {
			t.Fatalf("%s=%q: %v", name, env[name], err)
		}
		d.Duration = v
	}
	// gitops-api reads an empty value as its default and "none" as no dependency.
	for _, n := range strings.Split(env["STOREFLEET_SHARD_DEPENDS_ON"], ",") {
		if n = strings.TrimSpace(n); n != "" && n != "none" {
			l.DependsOn = append(l.DependsOn, n)
		}
	}
	// 1 (the chart's default) and 0 (render's) both mean no controller sharding.
	if n, err := strconv.Atoi(env["STOREFLEET_FLUX_SHARDS"]); err != nil {
		t.Fatalf("STOREFLEET_FLUX_SHARDS=%q: %v", env["STOREFLEET_FLUX_SHARDS"], err)
	} else if n > 1 {
		l.FluxShards = render.FluxShards(n)
	}
	if err := l.Validate(); err != nil {
		t.Fatalf("the chart's env gives an invalid layout: %v", err)
	}
	return l
}

// productionShardLayout is what the production cluster had in its static shard Kustomizations
// (interval 1h, retry 2m, timeout 5m, after infrastructure, SOPS with sops-age), now set
// by clusters/production/platform.yaml and values-prod.yaml.
func productionShardLayout() render.ShardLayout {
	return render.ShardLayout{
		Namespace:        "flux-system",
		Interval:         metav1.Duration{Duration: time.Hour},
		RetryInterval:    metav1.Duration{Duration: 2 * time.Minute},
		Timeout:          metav1.Duration{Duration: 5 * time.Minute},
		DependsOn:        []string{"infrastructure"},
		DecryptionSecret: "sops-age",
	}
}

// platformValues returns the values clusters/production/platform.yaml gives the
// storefleet HelmRelease.
func platformValues(t *testing.T) map[string]any {
	t.Helper()
	objs, err := DecodeObjects([]byte(readFile(t, filepath.Join(repoRoot, "clusters", "production", "platform.yaml"))))
	if err != nil {
		t.Fatal(err)
	}
	hr := find(objs, "HelmRelease", "storefleet")
	if hr == nil {
		t.Fatal("clusters/production/platform.yaml has no HelmRelease storefleet")
	}
	v, ok, _ := unstructured.NestedMap(hr.Object, "spec", "values")
	if !ok {
		t.Fatal("clusters/production/platform.yaml: HelmRelease storefleet has no spec.values")
	}
	return v
}

// The chart turns values.shards into the env gitops-api builds its shard layout from: the
// defaults are render.DefaultShardLayout (the layout internal/testenv applies, so a default
// install and the test environment agree), production (platform.yaml, as Flux installs it,
// and values-prod.yaml) keeps the layout of its old static shard Kustomizations, and every
// key moves its setting. The admission policy allows exactly the decryption Secret the
// layout names.
func TestPlatformShardLayout(t *testing.T) {
	custom := render.ShardLayout{
		Namespace:        "flux",
		Interval:         metav1.Duration{Duration: 90 * time.Minute},
		RetryInterval:    metav1.Duration{Duration: 45 * time.Second},
		Timeout:          metav1.Duration{Duration: 10*time.Minute + 30*time.Second},
		DependsOn:        []string{"infrastructure", "monitoring.stack"},
		DecryptionSecret: "age-key",
		FluxShards:       4,
	}
	noDeps := render.DefaultShardLayout()
	noDeps.DependsOn = nil
	for _, c := range []struct {
		name   string
		values func(t *testing.T) map[string]any // nil: the chart's defaults
		want   render.ShardLayout
	}{
		{"defaults", nil, render.DefaultShardLayout()},
		{"values-prod.yaml", func(t *testing.T) map[string]any { return baseValues(t, "storefleet") }, productionShardLayout()},
		{"clusters/production/platform.yaml", platformValues, productionShardLayout()},
		{"overrides", func(*testing.T) map[string]any {
			return map[string]any{"flux": map[string]any{"namespace": "flux"}, "shards": map[string]any{
				"interval": "90m", "retryInterval": "45s", "timeout": "10m30s",
				"dependsOn": []any{"infrastructure", "monitoring.stack"}, "decryptionSecret": "age-key", "fluxShards": 4}}
		}, custom},
		{"no dependency", func(*testing.T) map[string]any {
			return map[string]any{"shards": map[string]any{"dependsOn": []any{}}}
		}, noDeps},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			if c.values != nil {
				o.ValuesFiles = []string{writeValues(t, c.values(t))}
			}
			objs := template(t, "storefleet", o)
			env := deploymentEnv(t, objs)
			got := shardLayoutFromEnv(t, env)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("shard layout from the env %v:\n got %+v\nwant %+v", env, got, c.want)
			}
			if len(c.want.DependsOn) == 0 && env["STOREFLEET_SHARD_DEPENDS_ON"] != "none" {
				t.Errorf("STOREFLEET_SHARD_DEPENDS_ON=%q, want none (an empty value is gitops-api's default)", env["STOREFLEET_SHARD_DEPENDS_ON"])
			}
			if _, err := render.ShardKustomization(got, "3f0"); err != nil {
				t.Errorf("render.ShardKustomization with the chart's layout: %v", err)
			}

			policies := byKind(objs, "ValidatingAdmissionPolicy")
			if len(policies) != 1 {
				t.Fatalf("%d ValidatingAdmissionPolicies, want 1", len(policies))
			}
			validations, _, _ := unstructured.NestedSlice(policies[0].Object, "spec", "validations")
			var decryption []string // the expressions about spec.decryption
			for _, v := range validations {
				if e := fmt.Sprint(v.(map[string]any)["expression"]); strings.Contains(e, "object.spec.decryption") {
					decryption = append(decryption, e)
				}
			}
			want := "!variables.shardKustomization || !has(object.spec.decryption)"
			if c.want.DecryptionSecret != "" {
				want = fmt.Sprintf("object.spec.decryption.secretRef.name == %q", c.want.DecryptionSecret)
			}
			if len(decryption) != 1 || !strings.Contains(decryption[0], want) {
				t.Errorf("the admission policy's decryption rules %q, want one with %s", decryption, want)
			}
			if c.want.DecryptionSecret == "" && strings.Contains(strings.Join(decryption, " "), "secretRef") {
				t.Errorf("the admission policy admits a decryption Secret though shards.decryptionSecret is empty: %q", decryption)
			}
		})
	}
}

// Shard layout values Flux or gitops-api would refuse are refused by the schema, naming the
// field: durations in Flux's units (ms, s, m, h) and greater than zero, dependsOn a list
// of unique Kubernetes names, the decryption Secret a Kubernetes name.
func TestPlatformShardValuesInvalid(t *testing.T) {
	for _, c := range []struct {
		path  string
		value any
	}{
		{"shards.interval", "0s"},
		{"shards.interval", "0h0m"},
		{"shards.interval", "1d"},
		{"shards.interval", "60"},
		{"shards.interval", "-1h"},
		{"shards.interval", ""},
		{"shards.interval", 3600},
		{"shards.retryInterval", "0.0s"},
		{"shards.retryInterval", "100us"},
		{"shards.timeout", "soon"},
		{"shards.dependsOn", "infrastructure"},
		{"shards.dependsOn", []any{"Infra_Structure"}},
		{"shards.dependsOn", []any{""}},
		{"shards.dependsOn", []any{"infrastructure", "infrastructure"}},
		{"shards.decryptionSecret", "Sops_Age"},
		{"shards.decryptionSecret", []any{"sops-age"}},
		{"shards.fluxShards", 0},
		{"shards.fluxShards", 65},
		{"shards.fluxShards", "2"},
	} {
		t.Run(fmt.Sprintf("%s=%v", c.path, c.value), func(t *testing.T) {
			t.Parallel()
			v := baseValues(t, "storefleet")
			set(v, c.path, c.value)
			err := templateErr(t, "storefleet", v)
			if err == nil {
				t.Fatalf("%s=%v was accepted", c.path, c.value)
			}
			if want := "/" + strings.ReplaceAll(c.path, ".", "/"); !strings.Contains(err.Error(), want) {
				t.Fatalf("%s=%v failed without naming %s:\n%v", c.path, c.value, want, err)
			}
		})
	}
}
