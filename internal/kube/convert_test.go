package kube

import (
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const helmRelease = `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: shop
  namespace: store-shop
  generation: 3
  resourceVersion: "42"
  labels: {app.kubernetes.io/managed-by: storefleet}
  annotations: {reconcile.fluxcd.io/requestedAt: now}
  managedFields:
  - manager: kustomize-controller
    fieldsV1: {f:spec: {}}
spec:
  chart: {spec: {chart: woocommerce, version: 0.1.1}}
  install: {remediation: {retries: 3}}
  upgrade: {remediation: {retries: -1}}
  values: {store: {name: shop, title: "a long title"}}
status:
  observedGeneration: 2
  installFailures: 1
  upgradeFailures: 2
  lastAttemptedReleaseAction: upgrade
  lastAttemptedGeneration: 3
  conditions:
  - {type: Ready, status: "False", reason: UpgradeFailed, message: "boom", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 2}
  - {type: Stalled, status: "True", reason: RetriesExceeded, message: "gave up"}
  - {type: Drifted, status: "True", reason: DriftDetected, message: "Deployment changed"}
  history:
  - {chartVersion: 0.1.1, status: failed, name: shop, version: 2, digest: "sha256:x", configDigest: "sha256:y"}
  - {chartVersion: 0.1.0, status: superseded, name: shop, version: 1}
`

func TestTrimRelease(t *testing.T) {
	// As the API server sends it: JSON, numbers decoded as int64.
	js, err := yaml.YAMLToJSON([]byte(helmRelease))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	o, err := trimRelease(u)
	if err != nil {
		t.Fatal(err)
	}
	tr := o.(*unstructured.Unstructured)
	for _, path := range [][]string{{"metadata", "managedFields"}, {"metadata", "annotations"}, {"metadata", "labels"}, {"spec", "values"}} {
		if _, ok, _ := unstructured.NestedFieldNoCopy(tr.Object, path...); ok {
			t.Errorf("%v kept", path)
		}
	}
	if tr.GetName() != "shop" || tr.GetNamespace() != "store-shop" || tr.GetResourceVersion() != "42" {
		t.Fatalf("identity lost: %v", tr.Object["metadata"])
	}
	r := ToRelease(tr)
	if r.Generation != 3 || r.ObservedGeneration != 2 || r.ChartVersion != "0.1.1" || !r.Installed ||
		r.LatestChartVersion != "0.1.1" || r.InstallRetries != 3 || r.UpgradeRetries != -1 ||
		r.InstallFailures != 1 || r.UpgradeFailures != 2 || r.LastAction != "upgrade" || r.LastAttemptedGeneration != 3 {
		t.Fatalf("release %+v", r)
	}
	if r.Ready == nil || r.Ready.Reason != "UpgradeFailed" || r.Stalled == nil || r.Stalled.Status != "True" ||
		r.Drifted == nil || r.Drifted.Message != "Deployment changed" || r.Released != nil {
		t.Fatalf("conditions %+v %+v %+v %+v", r.Ready, r.Stalled, r.Drifted, r.Released)
	}
	// The original is untouched: transforms must not mutate what the reflector holds.
	if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "values"); !ok {
		t.Fatal("transform mutated its input")
	}
}

func TestTrimEvent(t *testing.T) {
	w := &Watcher{cfg: Config{NamespacePrefix: "store-"}}
	ev := func(ns string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Event",
			"metadata":       map[string]any{"name": "e1", "namespace": ns, "resourceVersion": "7"},
			"involvedObject": map[string]any{"kind": "HelmRelease", "name": "shop"},
			"reason":         "InstallSucceeded", "message": "Helm install succeeded", "type": "Normal",
			"count": int64(2), "lastTimestamp": "2026-01-02T03:04:05Z",
		}}
	}
	o, _ := w.trimEvent(ev("store-shop"))
	k := ToKubeEvent("shop", o.(*unstructured.Unstructured))
	if k.Object != "HelmRelease/shop" || k.Reason != "InstallSucceeded" || k.Count != 2 || k.Time.IsZero() || k.Namespace != "store-shop" {
		t.Fatalf("event %+v", k)
	}
	o, _ = w.trimEvent(ev("kube-system"))
	if _, ok := o.(*unstructured.Unstructured).Object["message"]; ok {
		t.Fatal("an event outside store namespaces kept its message")
	}
}

// A release referencing a shared chart source (spec.chartRef) names its version in
// the storefleet.io/version annotation: the trim keeps that annotation alone.
func TestTrimReleaseChartRef(t *testing.T) {
	doc := strings.Replace(helmRelease, "  chart: {spec: {chart: woocommerce, version: 0.1.1}}\n",
		"  chartRef: {kind: HelmChart, name: woocommerce-0.1.1, namespace: flux-system}\n", 1)
	doc = strings.Replace(doc, "annotations: {reconcile.fluxcd.io/requestedAt: now}",
		"annotations: {reconcile.fluxcd.io/requestedAt: now, storefleet.io/version: 0.1.1}", 1)
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	o, err := trimRelease(u)
	if err != nil {
		t.Fatal(err)
	}
	tr := o.(*unstructured.Unstructured)
	if a := tr.GetAnnotations(); len(a) != 1 || a[store.AnnotationVersion] != "0.1.1" {
		t.Fatalf("annotations kept: %v", a)
	}
	if r := ToRelease(tr); r.ChartVersion != "0.1.1" {
		t.Fatalf("chart version %q", r.ChartVersion)
	}
}
