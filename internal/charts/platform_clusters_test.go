package charts

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// extraClusterValues serve two more clusters, one with its own artifact URL, and
// expose the artifact port to them.
func extraClusterValues(t *testing.T) map[string]any {
	v := baseValues(t, "storefleet")
	set(v, "clusters.extra", []any{
		map[string]any{"name": "eu-west", "kubeconfigSecret": map[string]any{"name": "eu-west-kubeconfig", "key": "kubeconfig"},
			"artifactURL": "https://artifacts.example.com:9443/"},
		map[string]any{"name": "us", "kubeconfigSecret": map[string]any{"name": "us-kubeconfig", "key": "config"}},
	})
	set(v, "artifacts.expose", map[string]any{"enabled": true, "sourceRanges": []any{"203.0.113.0/24", "2001:db8::/32"}})
	return v
}

// gitopsAPI is the gitops-api container and its pod spec.
func gitopsAPI(t *testing.T, objs []*unstructured.Unstructured) (pod, container map[string]any) {
	t.Helper()
	d := find(objs, "Deployment", "storefleet-gitops-api")
	if d == nil {
		t.Fatal("Deployment storefleet-gitops-api missing")
	}
	pod, _, _ = unstructured.NestedMap(d.Object, "spec", "template", "spec")
	for _, c := range containers(pod) {
		if c["name"] == "gitops-api" {
			return pod, c
		}
	}
	t.Fatal("no gitops-api container")
	return nil, nil
}

// clusters.extra: each cluster's kubeconfig comes from its Secret as a read-only
// file, passed as --cluster-kubeconfig NAME=PATH (never in values, env or an
// object of the chart), and its artifactURL as --cluster-artifact-url. Without
// extra clusters nothing of it renders.
func TestPlatformExtraClusters(t *testing.T) {
	objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet",
		ValuesFiles: []string{writeValues(t, extraClusterValues(t))}})
	pod, c := gitopsAPI(t, objs)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{
		"--cluster-kubeconfig=eu-west=/etc/storefleet/clusters/eu-west/kubeconfig",
		"--cluster-artifact-url=eu-west=https://artifacts.example.com:9443",
		"--cluster-kubeconfig=us=/etc/storefleet/clusters/us/config",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--cluster-artifact-url=us=") }) {
		t.Errorf("args %v give us an artifact URL it has none of", args)
	}
	// Each path is a file of its cluster's Secret, read-only.
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	volumes, _, _ := unstructured.NestedSlice(pod, "volumes")
	for _, x := range []struct{ dir, secret, key string }{
		{"/etc/storefleet/clusters/eu-west", "eu-west-kubeconfig", "kubeconfig"},
		{"/etc/storefleet/clusters/us", "us-kubeconfig", "config"},
	} {
		var vol string
		for _, m := range mounts {
			mm := m.(map[string]any)
			if mm["mountPath"] == x.dir {
				vol, _ = mm["name"].(string)
				if ro, _ := mm["readOnly"].(bool); !ro {
					t.Errorf("%s is mounted writable", x.dir)
				}
			}
		}
		if vol == "" {
			t.Fatalf("nothing mounted at %s", x.dir)
		}
		found := false
		for _, v := range volumes {
			vm := v.(map[string]any)
			if vm["name"] != vol {
				continue
			}
			found = true
			name, _, _ := unstructured.NestedString(vm, "secret", "secretName")
			items, _, _ := unstructured.NestedSlice(vm, "secret", "items")
			if name != x.secret || len(items) != 1 || items[0].(map[string]any)["key"] != x.key || items[0].(map[string]any)["path"] != x.key {
				t.Errorf("volume %s: %v, want key %s of Secret %s", vol, vm, x.key, x.secret)
			}
		}
		if !found {
			t.Errorf("volume %s not declared", vol)
		}
	}
	env, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range env {
		if n := e.(map[string]any)["name"].(string); strings.Contains(n, "KUBECONFIG") {
			t.Errorf("a kubeconfig in the environment: %v", e)
		}
	}
	if s := byKind(objs, "Secret"); len(s) > 0 {
		t.Errorf("the chart renders Secrets %v: kubeconfigs come from existing ones", s[0].GetName())
	}

	// The defaults serve one cluster.
	objs = template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet"})
	_, c = gitopsAPI(t, objs)
	args, _, _ = unstructured.NestedStringSlice(c, "args")
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--cluster-") }) {
		t.Errorf("default args %v serve other clusters", args)
	}
	if find(objs, "Service", "storefleet-gitops-api-artifacts") != nil {
		t.Error("the default renders the artifacts Service")
	}
}

// artifacts.expose: a Service of the artifact port alone, passing only sourceRanges,
// and the NetworkPolicy admits those ranges to the artifact port (and to nothing
// else) besides the Flux controllers.
func TestPlatformArtifactsExposed(t *testing.T) {
	objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet",
		ValuesFiles: []string{writeValues(t, extraClusterValues(t))}})
	s := find(objs, "Service", "storefleet-gitops-api-artifacts")
	if s == nil {
		t.Fatal("no Service storefleet-gitops-api-artifacts")
	}
	typ, _, _ := unstructured.NestedString(s.Object, "spec", "type")
	etp, _, _ := unstructured.NestedString(s.Object, "spec", "externalTrafficPolicy")
	ranges, _, _ := unstructured.NestedStringSlice(s.Object, "spec", "loadBalancerSourceRanges")
	ports, _, _ := unstructured.NestedSlice(s.Object, "spec", "ports")
	if typ != "LoadBalancer" || etp != "Local" || !slices.Equal(ranges, []string{"203.0.113.0/24", "2001:db8::/32"}) ||
		len(ports) != 1 || ports[0].(map[string]any)["targetPort"] != "artifacts" {
		t.Errorf("artifacts Service spec: %v", s.Object["spec"])
	}
	np := find(objs, "NetworkPolicy", "storefleet-gitops-api-artifacts")
	if np == nil {
		t.Fatal("no NetworkPolicy")
	}
	rules, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	var cidrs []string
	for _, r := range rules {
		from, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
		rp, _, _ := unstructured.NestedSlice(r.(map[string]any), "ports")
		for _, f := range from {
			cidr, ok, _ := unstructured.NestedString(f.(map[string]any), "ipBlock", "cidr")
			if !ok {
				continue
			}
			cidrs = append(cidrs, cidr)
			if len(rp) != 1 || rp[0].(map[string]any)["port"] != "artifacts" {
				t.Errorf("%s is admitted to %v, want the artifact port alone", cidr, rp)
			}
		}
	}
	if !slices.Equal(cidrs, []string{"203.0.113.0/24", "2001:db8::/32"}) {
		t.Errorf("NetworkPolicy admits %v, want the sourceRanges", cidrs)
	}
}

// Mistakes in clusters.extra and artifacts.expose are refused, naming the key.
func TestPlatformExtraClustersInvalid(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(v map[string]any)
		want   string
	}{
		{"duplicate", func(v map[string]any) {
			set(v, "clusters.extra", append(field(v, "clusters.extra").([]any), map[string]any{"name": "us", "kubeconfigSecret": map[string]any{"name": "x", "key": "k"}}))
		}, "clusters.extra[2].name \"us\": cluster us is already served (by clusters.extra[1])"},
		{"the chart's own", func(v map[string]any) {
			set(v, "clusters.extra", []any{map[string]any{"name": field(v, "cluster"), "kubeconfigSecret": map[string]any{"name": "x", "key": "k"}}})
		}, "is already served (by cluster)"},
		{"no Secret", func(v map[string]any) { set(v, "clusters.extra", []any{map[string]any{"name": "us"}}) }, "/clusters/extra/0"},
		{"inline kubeconfig", func(v map[string]any) {
			set(v, "clusters.extra", []any{map[string]any{"name": "us", "kubeconfig": "apiVersion: v1", "kubeconfigSecret": map[string]any{"name": "x", "key": "k"}}})
		}, "/clusters/extra/0"},
		{"bad name", func(v map[string]any) {
			set(v, "clusters.extra", []any{map[string]any{"name": "EU West", "kubeconfigSecret": map[string]any{"name": "x", "key": "k"}}})
		}, "/clusters/extra/0/name"},
		{"bad URL", func(v map[string]any) {
			set(v, "clusters.extra", []any{map[string]any{"name": "us", "artifactURL": "artifacts.example.com:9091", "kubeconfigSecret": map[string]any{"name": "x", "key": "k"}}})
		}, "/clusters/extra/0/artifactURL"},
		{"URL with credentials", func(v map[string]any) {
			set(v, "clusters.extra", []any{map[string]any{"name": "us", "artifactURL": "https://u:p@a.example.com", "kubeconfigSecret": map[string]any{"name": "x", "key": "k"}}})
		}, "/clusters/extra/0/artifactURL"},
		{"exposed to everyone", func(v map[string]any) { set(v, "artifacts.expose.sourceRanges", []any{}) }, "artifacts.expose.sourceRanges: the CIDRs"},
		{"not a CIDR", func(v map[string]any) { set(v, "artifacts.expose.sourceRanges", []any{"everyone"}) }, "/artifacts/expose/sourceRanges/0"},
		{"ClusterIP", func(v map[string]any) { set(v, "artifacts.expose.type", "ClusterIP") }, "/artifacts/expose/type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v := extraClusterValues(t)
			c.change(v)
			err := templateErr(t, "storefleet", v)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want refused naming %q", err, c.want)
			}
		})
	}
}
