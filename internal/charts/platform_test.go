package charts

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// gitops-api's shard publisher is a single writer: a second pod would publish shard artifacts
// from another fleet head. The chart refuses every way of getting a second pod (and a PDB,
// which on one pod blocks node drains), naming the key and the reason.
func TestPlatformSingleWriter(t *testing.T) {
	for _, c := range []struct {
		path  string
		value any
	}{
		{"replicas", 2},
		{"replicas", 3},
		{"autoscaling.enabled", true},
		{"podDisruptionBudget.enabled", true},
	} {
		t.Run(c.path, func(t *testing.T) {
			t.Parallel()
			v := baseValues(t, "storefleet")
			set(v, c.path, c.value)
			err := templateErr(t, "storefleet", v)
			if err == nil {
				t.Fatalf("%s=%v was accepted", c.path, c.value)
			}
			for _, want := range []string{c.path + ":", "is refused", "shard publisher is a single writer"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s=%v: error does not say %q:\n%v", c.path, c.value, want, err)
				}
			}
		})
	}
	// Values written for the chart before the publisher (HPA settings with enabled: false)
	// still render, with one pod that is replaced, never surged, on upgrade.
	v := baseValues(t, "storefleet")
	set(v, "replicas", 1)
	set(v, "autoscaling", map[string]any{"enabled": false, "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70})
	set(v, "podDisruptionBudget", map[string]any{"enabled": false, "minAvailable": 1})
	objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet", ValuesFiles: []string{writeValues(t, v)}})
	d := find(objs, "Deployment", "storefleet-gitops-api")
	if d == nil {
		t.Fatal("Deployment storefleet-gitops-api missing")
	}
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "1" {
		t.Errorf("replicas %v, want 1", n)
	}
	if s, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("strategy %q, want Recreate (a rolling update runs two publishers side by side)", s)
	}
	for _, kind := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget"} {
		if len(byKind(objs, kind)) != 0 {
			t.Errorf("%s rendered", kind)
		}
	}
}

// deploymentEnv returns the literal env values of the gitops-api container.
func deploymentEnv(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	d := find(objs, "Deployment", "storefleet-gitops-api")
	if d == nil {
		t.Fatal("Deployment storefleet-gitops-api missing")
	}
	spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	env := map[string]string{}
	for _, c := range containers(spec) {
		if c["name"] != "gitops-api" {
			continue
		}
		vars, _, _ := unstructured.NestedSlice(c, "env")
		for _, raw := range vars {
			m := raw.(map[string]any)
			if val, ok := m["value"].(string); ok {
				env[m["name"].(string)] = val
			}
		}
	}
	return env
}

// The shard publisher's settings: the artifact URL defaults to the chart's own Service (the
// pod serves /artifacts/ itself), the interval to 30s; the Flux namespace moves the Role
// and the setting together; the data dir, where the tarballs are written, is a writable
// volume.
func TestPlatformPublisherSettings(t *testing.T) {
	for _, c := range []struct {
		name                  string
		values                map[string]any
		url, interval, fluxNS string
	}{
		{"defaults", nil, "http://storefleet-gitops-api.storefleet.svc.cluster.local:9091", "30s", "flux-system"},
		{"overrides", map[string]any{
			"service":   map[string]any{"port": 8080},
			"artifacts": map[string]any{"url": "http://artifacts.example.internal:9000/", "publishInterval": "1m30s"},
			"flux":      map[string]any{"namespace": "flux"},
		}, "http://artifacts.example.internal:9000", "1m30s", "flux"},
		{"service port", map[string]any{"service": map[string]any{"port": 8080}},
			"http://storefleet-gitops-api.storefleet.svc.cluster.local:9091", "30s", "flux-system"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			if c.values != nil {
				o.ValuesFiles = []string{writeValues(t, c.values)}
			}
			objs := template(t, "storefleet", o)
			env := deploymentEnv(t, objs)
			for name, want := range map[string]string{
				"STOREFLEET_ARTIFACT_URL":     c.url,
				"STOREFLEET_PUBLISH_INTERVAL": c.interval,
				"STOREFLEET_FLUX_NAMESPACE":   c.fluxNS,
				"STOREFLEET_IN_CLUSTER":       "true",
			} {
				if got, ok := env[name]; !ok || got != want {
					t.Errorf("%s = %q (set: %v), want %q", name, got, ok, want)
				}
			}
			for _, kind := range []string{"Role", "RoleBinding"} {
				r := find(objs, kind, "storefleet-gitops-api-artifacts")
				if r == nil {
					t.Fatalf("%s storefleet-gitops-api-artifacts missing", kind)
				}
				if r.GetNamespace() != c.fluxNS {
					t.Errorf("%s in namespace %q, want the Flux namespace %q", kind, r.GetNamespace(), c.fluxNS)
				}
			}

			// STOREFLEET_DATA_DIR is a mounted, writable volume (the root filesystem is read-only).
			d := find(objs, "Deployment", "storefleet-gitops-api")
			spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
			volumes, _, _ := unstructured.NestedSlice(spec, "volumes")
			for _, ct := range containers(spec) {
				if ct["name"] != "gitops-api" {
					continue
				}
				mounts, _, _ := unstructured.NestedSlice(ct, "volumeMounts")
				var vol string
				for _, m := range mounts {
					mm := m.(map[string]any)
					if mm["mountPath"] == env["STOREFLEET_DATA_DIR"] {
						vol, _ = mm["name"].(string)
						if ro, _ := mm["readOnly"].(bool); ro {
							t.Errorf("data dir %s mounted read-only", env["STOREFLEET_DATA_DIR"])
						}
					}
				}
				if vol == "" {
					t.Fatalf("data dir %q is not a mounted volume (the root filesystem is read-only)", env["STOREFLEET_DATA_DIR"])
				}
				found := false
				for _, v := range volumes {
					vm := v.(map[string]any)
					if vm["name"] == vol {
						found = true
						if _, ok := vm["emptyDir"]; !ok {
							t.Errorf("data volume %v is not an emptyDir (writable scratch the pod owns)", vm)
						}
					}
				}
				if !found {
					t.Errorf("data volume %q not declared", vol)
				}
			}
		})
	}
}

// Bad publisher settings are refused by the schema, naming the field.
func TestPlatformPublisherValuesInvalid(t *testing.T) {
	for _, c := range []struct {
		path  string
		value any
	}{
		{"artifacts.url", "storefleet-gitops-api.storefleet:80"},
		{"artifacts.url", "ftp://x"},
		{"artifacts.publishInterval", "30"},
		{"artifacts.publishInterval", "soon"},
		{"flux.namespace", "Flux_System"},
		{"flux.namespace", ""},
	} {
		t.Run(c.path+"="+c.value.(string), func(t *testing.T) {
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
