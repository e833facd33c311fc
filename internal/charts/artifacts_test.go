package charts

import (
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// peer is a pod that may try to reach gitops-api.
type peer struct {
	namespace string
	labels    map[string]string
}

// admits evaluates an ingress NetworkPolicy as a CNI enforcing it would: may from
// reach the pod (its labels podLabels, its container ports by name) on the named port?
func admits(t *testing.T, np *networkingv1.NetworkPolicy, podLabels map[string]string, from peer, namespaceLabels map[string]string, port string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(podLabels)) {
		return true // the policy does not select the pod: nothing is isolated
	}
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			portOK = portOK || (p.Port != nil && p.Port.String() == port)
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, f := range rule.From {
			if f.IPBlock != nil {
				continue
			}
			nsOK := f.NamespaceSelector == nil && from.namespace == np.Namespace
			if f.NamespaceSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(f.NamespaceSelector)
				if err != nil {
					t.Fatal(err)
				}
				nsOK = s.Matches(labels.Set(namespaceLabels))
			}
			podOK := true
			if f.PodSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(f.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				podOK = s.Matches(labels.Set(from.labels))
			}
			if nsOK && podOK {
				return true
			}
		}
	}
	return false
}

func namedPorts(t *testing.T, c map[string]any) map[string]int64 {
	t.Helper()
	ports, _, _ := unstructured.NestedSlice(c, "ports")
	out := map[string]int64{}
	for _, p := range ports {
		m := p.(map[string]any)
		n, _ := m["containerPort"].(int64)
		if f, ok := m["containerPort"].(float64); ok {
			n = int64(f)
		}
		out[fmt.Sprint(m["name"])] = n
	}
	return out
}

// The artifacts have a listener of their own: the pod exposes it as port "artifacts",
// the Service forwards it, gitops-api is told to listen there and advertises it in the
// artifact URL; artifacts.port moves all of it, and never onto the API's port.
func TestPlatformArtifactsListener(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]any
		port   int64
	}{
		{"defaults", nil, 9091},
		{"artifacts.port", map[string]any{"artifacts": map[string]any{"port": 9500}}, 9500},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			if c.values != nil {
				o.ValuesFiles = []string{writeValues(t, c.values)}
			}
			objs := template(t, "storefleet", o)
			env := deploymentEnv(t, objs)
			if got, want := env["STOREFLEET_ARTIFACTS_LISTEN"], fmt.Sprintf(":%d", c.port); got != want {
				t.Errorf("STOREFLEET_ARTIFACTS_LISTEN = %q, want %q", got, want)
			}
			if got, want := env["STOREFLEET_ARTIFACT_URL"], fmt.Sprintf("http://storefleet-gitops-api.storefleet.svc.cluster.local:%d", c.port); got != want {
				t.Errorf("STOREFLEET_ARTIFACT_URL = %q, want %q", got, want)
			}
			d := find(objs, "Deployment", "storefleet-gitops-api")
			spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
			for _, ct := range containers(spec) {
				if ct["name"] != "gitops-api" {
					continue
				}
				if ports := namedPorts(t, ct); ports["artifacts"] != c.port || ports["http"] != 8080 {
					t.Errorf("container ports %v, want http 8080 and artifacts %d", ports, c.port)
				}
			}
			svc := find(objs, "Service", "storefleet-gitops-api")
			if svc == nil {
				t.Fatal("Service storefleet-gitops-api missing")
			}
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			found := false
			for _, p := range ports {
				m := p.(map[string]any)
				if m["name"] == "artifacts" {
					found = fmt.Sprint(m["port"]) == fmt.Sprint(c.port) && m["targetPort"] == "artifacts"
				}
			}
			if !found {
				t.Errorf("Service ports %v: want artifacts %d → targetPort artifacts", ports, c.port)
			}
		})
	}
}

// Only the Flux controllers reach the artifact port; the API port stays open to
// whatever reaches it without the policy. Evaluated as an enforcing CNI would, for the
// pods that matter, in the default Flux namespace and in another one.
func TestPlatformArtifactsNetworkPolicy(t *testing.T) {
	for _, fluxNS := range []string{"flux-system", "flux"} {
		t.Run(fluxNS, func(t *testing.T) {
			t.Parallel()
			objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet",
				ValuesFiles: []string{writeValues(t, map[string]any{"flux": map[string]any{"namespace": fluxNS}})}})
			u := find(objs, "NetworkPolicy", "storefleet-gitops-api-artifacts")
			if u == nil {
				t.Fatal("NetworkPolicy storefleet-gitops-api-artifacts missing")
			}
			var np networkingv1.NetworkPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &np); err != nil {
				t.Fatal(err)
			}
			np.Namespace = "storefleet"
			if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
				t.Errorf("policyTypes %v, want [Ingress] (egress is not this policy's business)", np.Spec.PolicyTypes)
			}
			d := find(objs, "Deployment", "storefleet-gitops-api")
			podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
			nsLabels := func(ns string) map[string]string { return map[string]string{"kubernetes.io/metadata.name": ns} }
			for _, c := range []struct {
				who         string
				from        peer
				artifacts   bool
				description string
			}{
				{"kustomize-controller", peer{fluxNS, map[string]string{"app": "kustomize-controller"}}, true, "downloads the artifacts"},
				{"source-controller", peer{fluxNS, map[string]string{"app": "source-controller"}}, true, "Flux's artifact client"},
				{"helm-controller", peer{fluxNS, map[string]string{"app": "helm-controller"}}, false, "another Flux controller"},
				{"unlabelled pod in the Flux namespace", peer{fluxNS, nil}, false, ""},
				{"a kustomize-controller lookalike elsewhere", peer{"store-shop", map[string]string{"app": "kustomize-controller"}}, false, ""},
				{"a store", peer{"store-shop", map[string]string{"app.kubernetes.io/name": "woocommerce"}}, false, ""},
				{"gitops-api's own namespace", peer{"storefleet", map[string]string{"app": "x"}}, false, ""},
			} {
				if got := admits(t, &np, podLabels, c.from, nsLabels(c.from.namespace), "artifacts"); got != c.artifacts {
					t.Errorf("%s on the artifact port: admitted %v, want %v", c.who, got, c.artifacts)
				}
				if !admits(t, &np, podLabels, c.from, nsLabels(c.from.namespace), "http") {
					t.Errorf("%s on the API port: refused, want admitted (the API is not this policy's business)", c.who)
				}
			}
		})
	}

	// Off: no policy.
	objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet",
		ValuesFiles: []string{writeValues(t, map[string]any{"artifacts": map[string]any{"networkPolicy": map[string]any{"enabled": false}}})}})
	if n := len(byKind(objs, "NetworkPolicy")); n != 0 {
		t.Errorf("networkPolicy.enabled=false: %d NetworkPolicies rendered", n)
	}
}

// Bad artifact settings are refused by the schema, naming the field.
func TestPlatformArtifactsValuesInvalid(t *testing.T) {
	for _, c := range []struct {
		path  string
		value any
	}{
		{"artifacts.port", 8080},
		{"artifacts.port", 80},
		{"artifacts.port", 70000},
		{"artifacts.port", "9091"},
		{"artifacts.networkPolicy.fluxControllers", []any{}},
		{"artifacts.networkPolicy.fluxControllers", []any{"Kustomize_Controller"}},
		{"artifacts.networkPolicy.enabled", "yes"},
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
