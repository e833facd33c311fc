package charts

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Several replicas share the fleet (the Lease holder alone publishes): the chart renders
// them as asked, rolls them out without a gap, spreads them over nodes and keeps one through
// drains with a PodDisruptionBudget, but never a PDB on a single pod (it would block every
// drain). An autoscaler is still refused: the chart renders none.
func TestPlatformReplicas(t *testing.T) {
	for _, c := range []struct {
		name     string
		values   map[string]any
		file     string
		replicas int
		pdb      bool
	}{
		{"defaults", nil, "", 1, false},
		{"three", map[string]any{"replicas": 3}, "", 3, true},
		{"pdb off", map[string]any{"replicas": 2, "podDisruptionBudget": map[string]any{"enabled": false}}, "", 2, false},
		{"prod", nil, "values-prod.yaml", 2, true},
		// Values written for the chart before replicas (HPA settings with enabled: false).
		{"old values", map[string]any{"replicas": 1, "autoscaling": map[string]any{"enabled": false, "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70},
			"podDisruptionBudget": map[string]any{"enabled": true, "minAvailable": 1}}, "", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			if c.file != "" {
				o.ValuesFiles = append(o.ValuesFiles, chartDir("storefleet")+"/"+c.file)
			}
			if c.values != nil {
				o.ValuesFiles = append(o.ValuesFiles, writeValues(t, c.values))
			}
			objs := template(t, "storefleet", o)
			d := find(objs, "Deployment", "storefleet-gitops-api")
			if d == nil {
				t.Fatal("Deployment storefleet-gitops-api missing")
			}
			if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != fmt.Sprint(c.replicas) {
				t.Errorf("replicas %v, want %d", n, c.replicas)
			}
			if s, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type"); s != "RollingUpdate" {
				t.Errorf("strategy %q, want RollingUpdate", s)
			}
			if u, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "strategy", "rollingUpdate", "maxUnavailable"); fmt.Sprint(u) != "0" {
				t.Errorf("maxUnavailable %v, want 0 (a new pod before an old one goes)", u)
			}
			terms, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution")
			if len(terms) != 1 {
				t.Fatalf("preferred pod anti-affinity terms: %v, want one", terms)
			}
			term := terms[0].(map[string]any)
			if k, _, _ := unstructured.NestedString(term, "podAffinityTerm", "topologyKey"); k != "kubernetes.io/hostname" {
				t.Errorf("anti-affinity topologyKey %q, want kubernetes.io/hostname", k)
			}
			sel, _, _ := unstructured.NestedStringMap(term, "podAffinityTerm", "labelSelector", "matchLabels")
			podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "selector", "matchLabels")
			if fmt.Sprint(sel) != fmt.Sprint(podLabels) {
				t.Errorf("anti-affinity selects %v, want the Deployment's pods %v", sel, podLabels)
			}
			pdbs := byKind(objs, "PodDisruptionBudget")
			if !c.pdb {
				if len(pdbs) != 0 {
					t.Fatalf("PodDisruptionBudget rendered with %d replicas (or disabled)", c.replicas)
				}
			} else {
				if len(pdbs) != 1 {
					t.Fatalf("%d PodDisruptionBudgets, want 1", len(pdbs))
				}
				if m, _, _ := unstructured.NestedFieldNoCopy(pdbs[0].Object, "spec", "minAvailable"); fmt.Sprint(m) != "1" {
					t.Errorf("PDB minAvailable %v, want 1", m)
				}
				if got, _, _ := unstructured.NestedStringMap(pdbs[0].Object, "spec", "selector", "matchLabels"); fmt.Sprint(got) != fmt.Sprint(podLabels) {
					t.Errorf("PDB selects %v, want the Deployment's pods %v", got, podLabels)
				}
			}
			if len(byKind(objs, "HorizontalPodAutoscaler")) != 0 {
				t.Error("HorizontalPodAutoscaler rendered")
			}
			env := deploymentEnv(t, objs)
			if env["STOREFLEET_LEASE_NAME"] != "storefleet-publisher" || env["STOREFLEET_FETCH_INTERVAL"] != "1s" {
				t.Errorf("lease name %q, fetch interval %q", env["STOREFLEET_LEASE_NAME"], env["STOREFLEET_FETCH_INTERVAL"])
			}
		})
	}
	v := baseValues(t, "storefleet")
	set(v, "autoscaling.enabled", true)
	err := templateErr(t, "storefleet", v)
	if err == nil || !strings.Contains(err.Error(), "autoscaling.enabled: true is refused") {
		t.Fatalf("autoscaling.enabled=true: %v, want refused", err)
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

// Real clusters run kubelets: the platform chart has Helm wait for a store's workloads
// by default, so a store is ready only when its shop serves; a cluster without a
// kubelet turns it off explicitly.
func TestPlatformHelmWait(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"default", nil, "on"},
		{"off", map[string]any{"stores": map[string]any{"helmWait": false}}, "off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			if c.values != nil {
				o.ValuesFiles = []string{writeValues(t, c.values)}
			}
			if got := deploymentEnv(t, template(t, "storefleet", o))["STOREFLEET_HELM_WAIT"]; got != c.want {
				t.Errorf("STOREFLEET_HELM_WAIT = %q, want %q", got, c.want)
			}
		})
	}
}

// The chart hands stores.releaseInterval to serve, which renders it as every
// HelmRelease's spec.interval; the schema refuses what is not a duration.
func TestPlatformReleaseInterval(t *testing.T) {
	o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
	if got := deploymentEnv(t, template(t, "storefleet", o))["STOREFLEET_RELEASE_INTERVAL"]; got != "10m" {
		t.Errorf("default STOREFLEET_RELEASE_INTERVAL = %q, want 10m", got)
	}
	o.ValuesFiles = []string{writeValues(t, map[string]any{"stores": map[string]any{"releaseInterval": "1h"}})}
	if got := deploymentEnv(t, template(t, "storefleet", o))["STOREFLEET_RELEASE_INTERVAL"]; got != "1h" {
		t.Errorf("STOREFLEET_RELEASE_INTERVAL = %q, want 1h", got)
	}
	if err := templateErr(t, "storefleet", map[string]any{"stores": map[string]any{"releaseInterval": "hourly"}}); err == nil {
		t.Error("releaseInterval: hourly was accepted")
	}
}
