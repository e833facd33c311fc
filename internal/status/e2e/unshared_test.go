package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// TestUnusedChartSourcePruned: when the last store of a version is deleted, its
// shared HelmChart leaves the fleet in the delete's commit, and the cluster: the
// publisher asks Flux to fetch the changed chart-sources folder and the
// chart-sources Kustomization prunes it. A later store of the version brings it back.
func TestUnusedChartSourcePruned(t *testing.T) {
	a := startAPI(t)
	const version = "0.1.3"
	source := render.ChartSourceName(store.WooCommerce, version)

	const name = "unshared"
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(name, version), http.StatusAccepted)
	waitReady(t, a, name)
	wantCharts(t, map[string]bool{source: true}, version)

	// Other tests of the package may have left live stores of the version
	// (TestNewVersionFetchedAtOnce does): this test deletes every one, its own last.
	for _, other := range liveStoresOf(t, a, version) {
		if other != name {
			a.do(t, http.MethodDelete, "/api/v1/stores/"+other, nil, http.StatusAccepted)
		}
	}
	wantCharts(t, map[string]bool{source: true}, version)
	a.do(t, http.MethodDelete, "/api/v1/stores/"+name, nil, http.StatusAccepted)
	waitFor(t, 2*time.Minute, func() (bool, string) {
		left := helmCharts(t, version)
		return len(left) == 0, fmt.Sprintf("HelmCharts of woocommerce %s still in the cluster: %v", version, left)
	})

	const again = "unshared-again"
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(again, version), http.StatusAccepted)
	waitReady(t, a, again)
	wantCharts(t, map[string]bool{source: true}, version)
	if got := chartRef(t, again); got != "HelmChart flux-system/"+source {
		t.Errorf("%s: chartRef %s", again, got)
	}
}

// liveStoresOf lists the stores whose version is version and whose HelmRelease is
// in the fleet (not deleted).
func liveStoresOf(t *testing.T, a *gitopsAPI, version string) []string {
	t.Helper()
	var names []string
	next := ""
	for {
		q := url.Values{"limit": {"500"}}
		if next != "" {
			q.Set("continue", next)
		}
		var list struct {
			Items    []storeView `json:"items"`
			Continue string      `json:"continue"`
		}
		if err := json.Unmarshal(a.do(t, http.MethodGet, "/api/v1/stores?"+q.Encode(), nil, http.StatusOK), &list); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			if s.Version == version && s.Status.Phase != "deleting" && s.Status.Phase != "retained" && s.Status.Phase != "purging" && s.Status.Phase != "deleted" {
				names = append(names, s.Name)
			}
		}
		if list.Continue == "" {
			return names
		}
		next = list.Continue
	}
}

// helmCharts names the HelmCharts of woocommerce at version in the cluster.
func helmCharts(t *testing.T, version string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(helmChartList)
	if err := env.Client.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, hc := range list.Items {
		chart, _, _ := unstructured.NestedString(hc.Object, "spec", "chart")
		v, _, _ := unstructured.NestedString(hc.Object, "spec", "version")
		if chart == "woocommerce" && v == version {
			out = append(out, hc.GetNamespace()+"/"+hc.GetName())
		}
	}
	return out
}
