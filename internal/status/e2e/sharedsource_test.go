package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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

// TestNewVersionFetchedAtOnce: the first store of a version no store used before
// becomes ready although the fleet GitRepository, which brings the version's shared
// chart source, would not fetch on its own for ten minutes: the shard publisher saw
// the commit change chart-sources/local and asked source-controller to fetch (the
// reconcile request annotation changed), as it publishes the store's shard.
func TestNewVersionFetchedAtOnce(t *testing.T) {
	a := startAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	key := client.ObjectKey{Namespace: "flux-system", Name: "fleet"}
	fleet := func() *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gitRepositoryGVK)
		if err := env.Client.Get(ctx, key, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	setInterval := func(ctx context.Context, v string) error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gitRepositoryGVK)
		u.SetNamespace(key.Namespace)
		u.SetName(key.Name)
		return env.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"interval":%q}}`, v)))
	}
	interval, _, _ := unstructured.NestedString(fleet().Object, "spec", "interval")
	if err := setInterval(ctx, "10m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := setInterval(ctx, interval); err != nil {
			t.Errorf("restoring the fleet GitRepository's interval %s: %v", interval, err)
		}
	})
	// The new spec makes source-controller fetch once more: let it finish, so that
	// what brings the store's chart source can only be a reconcile request.
	waitFor(t, time.Minute, func() (bool, string) {
		u := fleet()
		observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		ok, msg := testenv.IsReady(u)
		return ok && observed == u.GetGeneration(), fmt.Sprintf("observed generation %d of %d; %s", observed, u.GetGeneration(), msg)
	})
	asked := fleet().GetAnnotations()[testenv.ReconcileAnnotation]

	const name, version = "newversion", "0.1.3"
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(name, version), http.StatusAccepted)
	waitReady(t, a, name)
	if now := fleet().GetAnnotations()[testenv.ReconcileAnnotation]; now == asked {
		t.Errorf("the fleet GitRepository's reconcile request is still %q: nobody asked for a fetch", asked)
	}
	source := render.ChartSourceName(store.WooCommerce, version)
	if got := chartRef(t, name); got != "HelmChart flux-system/"+source {
		t.Errorf("%s: chartRef %s", name, got)
	}
	wantCharts(t, map[string]bool{source: true}, version)
}

var gitRepositoryGVK = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}

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
