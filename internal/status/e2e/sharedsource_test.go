package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// Stores of one engine × version share one chart source: N stores created through the
// API all become ready with exactly one HelmChart for their version in the cluster
// (flux-system/<chart>-<version>, render.ChartSourceName), none of their own, and each
// HelmRelease references it by spec.chartRef; a version upgrade of one store moves
// it to a second shared source, which the others do not use, and it becomes ready
// again.
func TestSharedChartSource(t *testing.T) {
	a := startAPI(t)
	const n = 4
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("shared-%d", i)
		a.do(t, http.MethodPost, "/api/v1/stores", createBody(names[i], "0.1.0"), http.StatusAccepted)
	}
	fetchFleet(t)
	for _, name := range names {
		waitReady(t, a, name)
	}
	first := render.ChartSourceName(store.WooCommerce, "0.1.0")
	wantCharts(t, map[string]bool{first: true}, "0.1.0")
	for _, name := range names {
		if got := chartRef(t, name); got != "HelmChart flux-system/"+first {
			t.Errorf("%s: chartRef %s", name, got)
		}
	}

	a.do(t, http.MethodPatch, "/api/v1/stores/"+names[0], map[string]any{"version": "0.1.1"}, http.StatusAccepted)
	second := render.ChartSourceName(store.WooCommerce, "0.1.1")
	fetchFleet(t)
	waitFor(t, 3*time.Minute, func() (bool, string) {
		v := a.get(t, names[0])
		ref := chartRef(t, names[0])
		return v.Status.Phase == "ready" && v.Version == "0.1.1" && ref == "HelmChart flux-system/"+second,
			fmt.Sprintf("%s: %s %s, version %s, chartRef %s", names[0], v.Status.Phase, v.Status.Message, v.Version, ref)
	})
	wantCharts(t, map[string]bool{first: true}, "0.1.0")
	wantCharts(t, map[string]bool{second: true}, "0.1.1")
	for _, name := range names[1:] {
		if got := chartRef(t, name); got != "HelmChart flux-system/"+first {
			t.Errorf("%s moved too: chartRef %s", name, got)
		}
		if v := a.get(t, name); v.Status.Phase != "ready" {
			t.Errorf("%s after the other's upgrade: %s %s", name, v.Status.Phase, v.Status.Message)
		}
	}
}

// fetchFleet asks source-controller to fetch the fleet repository now, as the Git
// host's webhook does on a real cluster (clusters/production/receiver.yaml): the
// chart source of a version no store used before comes with the fleet
// GitRepository, not with the shard artifacts, and the test would otherwise wait
// for its one-minute interval. A store of that version waits for its source
// either way; this only shortens the wait.
func fetchFleet(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gvk := schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	if _, err := env.RequestReconcile(ctx, gvk, client.ObjectKey{Namespace: "flux-system", Name: "fleet"}); err != nil {
		t.Fatal(err)
	}
}

// sharedSource is the chart source st references, as a file for a push from outside
// gitops-api.
func sharedSource(t testing.TB, rnd render.Renderer, st store.Store) []gitrepo.File {
	t.Helper()
	files, err := rnd.Shared(st)
	if err != nil {
		t.Fatal(err)
	}
	var out []gitrepo.File
	for _, f := range files {
		out = append(out, gitrepo.File{Path: f.Path, Content: f.Content})
	}
	return out
}

// applySharedSource applies the chart source st references straight to the
// cluster, for stores of a cluster whose chart-sources folder no Kustomization of the
// test environment applies (only clusters/local's is).
func applySharedSource(t testing.TB, rnd render.Renderer, st store.Store) {
	t.Helper()
	f, err := render.SharedChartSource(st, rnd.Options)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.Apply(ctx, f.Content); err != nil {
		t.Fatal(err)
	}
}

var helmChartList = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "HelmChartList"}

// wantCharts checks that the HelmCharts of the woocommerce chart at version, in every
// namespace, are exactly want (names in flux-system), each Ready.
func wantCharts(t *testing.T, want map[string]bool, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(helmChartList)
	if err := env.Client.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for i, hc := range list.Items {
		chart, _, _ := unstructured.NestedString(hc.Object, "spec", "chart")
		v, _, _ := unstructured.NestedString(hc.Object, "spec", "version")
		if chart != "woocommerce" || v != version {
			continue
		}
		if hc.GetNamespace() != "flux-system" {
			t.Errorf("HelmChart %s/%s of woocommerce %s outside flux-system", hc.GetNamespace(), hc.GetName(), version)
			continue
		}
		got[hc.GetName()] = true
		if ok, msg := testenv.IsReady(&list.Items[i]); !ok {
			t.Errorf("HelmChart %s not ready: %s", hc.GetName(), msg)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("HelmCharts of woocommerce %s: %v, want %v (of %d HelmCharts in the cluster)", version, keys(got), keys(want), len(list.Items))
	}
	for name := range want {
		if !got[name] {
			t.Fatalf("HelmCharts of woocommerce %s: %v, want %v", version, keys(got), keys(want))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// chartRef is the store's HelmRelease's spec.chartRef as "<kind> <namespace>/<name>".
func chartRef(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr := &unstructured.Unstructured{}
	hr.SetGroupVersionKind(schema.GroupVersionKind{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease"})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "store-" + name, Name: name}, hr); err != nil {
		return err.Error()
	}
	if _, has, _ := unstructured.NestedMap(hr.Object, "spec", "chart"); has {
		return "spec.chart set"
	}
	kind, _, _ := unstructured.NestedString(hr.Object, "spec", "chartRef", "kind")
	ns, _, _ := unstructured.NestedString(hr.Object, "spec", "chartRef", "namespace")
	n, _, _ := unstructured.NestedString(hr.Object, "spec", "chartRef", "name")
	return kind + " " + ns + "/" + n
}
