package k8sschema

import (
	"errors"
	"strings"
	"testing"
)

func mustDefault(t testing.TB) *Validator {
	t.Helper()
	v, err := Default()
	if err != nil {
		t.Fatalf("loading the schemas (needs the Go module cache or the module proxy): %v", err)
	}
	return v
}

func TestValidAccepted(t *testing.T) {
	v := mustDefault(t)
	docs := `
apiVersion: v1
kind: Namespace
metadata:
  name: store-shop
  labels: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1
        ports: [{containerPort: 80}]
        resources: {limits: {cpu: "1", memory: 512Mi}, requests: {cpu: 100m}}
        readinessProbe: {httpGet: {path: /, port: http}}
---
# empty documents are skipped
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: shop, namespace: store-shop}
spec:
  interval: 10m
  chart:
    spec:
      chart: woocommerce
      version: 0.1.0
      sourceRef: {kind: HelmRepository, name: charts, namespace: flux-system}
  values: {anything: [1, 2, {goes: here}]}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: shop, namespace: store-shop}
spec: {interval: 10m, url: "oci://example.com/charts/woocommerce", ref: {tag: 0.1.0}}
`
	if err := v.Validate([]byte(docs)); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][2]string{{"v1", "PersistentVolumeClaim"}, {"networking.k8s.io/v1", "Ingress"}, {"batch/v1", "Job"},
		{"kustomize.toolkit.fluxcd.io/v1", "Kustomization"}, {"source.toolkit.fluxcd.io/v1", "HelmRepository"}} {
		if !v.Knows(k[0], k[1]) {
			t.Errorf("no schema for %v", k)
		}
	}
}

func TestProblemsListed(t *testing.T) {
	v := mustDefault(t)
	docs := `apiVersion: v1
kind: Namespace
metadata:
  name: store-shop
  lables: {a: b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: x}
subjects: [{kind: ServiceAccount, name: sa}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  policyTypes: Ingress
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: shop}
spec:
  interval: 10 minutes
  driftDetection: {mode: sometimes}
  releaseNmae: shop
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: 1}
`
	err := v.Validate([]byte(docs))
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("want *Error, got %v", err)
	}
	text := err.Error()
	for _, want := range []string{
		`document 1 (v1 Namespace "store-shop"): metadata.lables`,
		`document 2 (rbac.authorization.k8s.io/v1 RoleBinding "rb"): roleRef`,
		`document 3 (networking.k8s.io/v1 NetworkPolicy "np"): spec.policyTypes`,
		`spec.interval`,
		`spec.driftDetection.mode`,
		`spec.releaseNmae`,
		`document 5 (example.com/v1 Widget "w"): no schema`,
		`document 6 (v1 ConfigMap "c"): data.a`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestBrokenYAML(t *testing.T) {
	v := mustDefault(t)
	if err := v.Validate([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, name: b}\n")); err == nil {
		t.Fatal("duplicate keys accepted")
	}
	if err := v.Validate([]byte("kind: Namespace\n")); err == nil || !strings.Contains(err.Error(), "apiVersion and kind") {
		t.Fatalf("missing apiVersion: %v", err)
	}
}

func TestIntOrString(t *testing.T) {
	v := mustDefault(t)
	ok := "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - {port: 80, targetPort: http}\n  - {port: 81, targetPort: 8080}\n"
	if err := v.Validate([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	bad := "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - {port: 80, targetPort: [1]}\n"
	if err := v.Validate([]byte(bad)); err == nil {
		t.Fatal("a list accepted as int-or-string")
	}
}

func TestQuantities(t *testing.T) {
	v := mustDefault(t)
	doc := func(q string) []byte {
		return []byte("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {requests.cpu: " + q + "}\n")
	}
	for _, ok := range []string{`"500m"`, `"1"`, `2`, `"1.5Gi"`, `0.5`} {
		if err := v.Validate(doc(ok)); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{`"512MB"`, `"1 core"`, `"abc"`, `[1]`} {
		err := v.Validate(doc(bad))
		if err == nil || !strings.Contains(err.Error(), "spec.hard.requests.cpu") {
			t.Errorf("%s accepted or not located: %v", bad, err)
		}
	}
}

func TestNullIsAbsent(t *testing.T) {
	v := mustDefault(t)
	ok := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, creationTimestamp: null, labels: null}\ndata: null\n"
	if err := v.Validate([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	bad := "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb}\nroleRef: null\n"
	if err := v.Validate([]byte(bad)); err == nil || !strings.Contains(err.Error(), "roleRef in body is required") {
		t.Fatalf("null required field: %v", err)
	}
}
