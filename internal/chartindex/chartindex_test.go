package chartindex

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// The repository's own charts: what the local HelmRepository serves by default.
func TestDirReadsTheRepositoryCharts(t *testing.T) {
	for _, e := range store.Engines {
		got, err := Dir{Path: filepath.Join("..", "..", "charts")}.Versions(context.Background(), e)
		if err != nil || !reflect.DeepEqual(got, []string{store.DefaultVersion[e]}) {
			t.Errorf("%s: %v %v, want the chart's version %s", e, got, err, store.DefaultVersion[e])
		}
	}
}

// Charts are matched by the name in Chart.yaml, not by folder, so a folder holding
// several versions of one chart (as the status tests publish) offers each.
func TestDirMatchesChartsByName(t *testing.T) {
	dir := t.TempDir()
	for folder, chart := range map[string]string{
		"woocommerce":       "name: woocommerce\nversion: 0.1.0\n",
		"woocommerce-0.1.1": "name: woocommerce\nversion: 0.1.1\n",
		"storefleet":        "name: storefleet\nversion: 9.9.9\n",
		"medusa":            "name: medusa\nversion: 0.2.0\n",
	} {
		if err := os.MkdirAll(filepath.Join(dir, folder), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, folder, "Chart.yaml"), []byte(chart), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Dir{Path: dir}.Versions(context.Background(), store.WooCommerce)
	if err != nil || !reflect.DeepEqual(got, []string{"0.1.0", "0.1.1"}) {
		t.Fatalf("woocommerce: %v %v", got, err)
	}
	// A folder that is not there is an error, never "no versions" (which would refuse
	// every store).
	if _, err := (Dir{Path: filepath.Join(dir, "nope")}).Versions(context.Background(), store.Medusa); err == nil {
		t.Fatal("a missing folder offered versions")
	}
}

// index.yaml as helm repo index writes it (trimmed).
const testIndex = `apiVersion: v1
entries:
  medusa:
  - apiVersion: v2
    created: "2026-01-01T00:00:00Z"
    digest: 0b
    name: medusa
    urls:
    - http://127.0.0.1/medusa-0.1.0.tgz
    version: 0.1.0
  woocommerce:
  - apiVersion: v2
    name: woocommerce
    urls:
    - http://127.0.0.1/woocommerce-0.2.0.tgz
    version: 0.2.0
  - apiVersion: v2
    name: woocommerce
    urls:
    - http://127.0.0.1/woocommerce-0.1.0.tgz
    version: 0.1.0
generated: "2026-01-01T00:00:00Z"
`

func TestIndexOverHTTP(t *testing.T) {
	var body atomic.Value
	body.Store(testIndex)
	var hits, fail atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if fail.Load() != 0 || r.URL.Path != "/index.yaml" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	now := time.Unix(0, 0)
	x := NewIndex(srv.URL + "/index.yaml")
	x.now = func() time.Time { return now }
	ctx := context.Background()

	got, err := x.Versions(ctx, store.WooCommerce)
	if err != nil || !reflect.DeepEqual(got, []string{"0.1.0", "0.2.0"}) {
		t.Fatalf("woocommerce: %v %v", got, err)
	}
	if got, _ := x.Versions(ctx, store.Medusa); !reflect.DeepEqual(got, []string{"0.1.0"}) {
		t.Fatalf("medusa: %v", got)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d reads of the index within its TTL, want 1", hits.Load())
	}

	// After the TTL the index is read again, and a chart published since is offered.
	body.Store("apiVersion: v1\nentries:\n  medusa:\n  - name: medusa\n    version: 0.3.0\n  - name: medusa\n    version: 0.1.0\n")
	now = now.Add(DefaultTTL)
	if got, _ := x.Versions(ctx, store.Medusa); !reflect.DeepEqual(got, []string{"0.1.0", "0.3.0"}) {
		t.Fatalf("medusa after the TTL: %v", got)
	}

	// The repository down: the last index read stands.
	fail.Store(1)
	now = now.Add(DefaultTTL)
	if got, err := x.Versions(ctx, store.Medusa); err != nil || len(got) != 2 {
		t.Fatalf("while the repository is down: %v %v", got, err)
	}
	// Never read: the error is the caller's to report.
	if _, err := NewIndex(srv.URL+"/index.yaml").Versions(ctx, store.Medusa); err == nil {
		t.Fatal("an unreadable index offered versions")
	}
}

func TestIndexFileAndNonIndex(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "index.yaml"), filepath.Join(dir, "page.html")
	if err := os.WriteFile(good, []byte(testIndex), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("<html>not an index</html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := NewIndex(good).Versions(ctx, store.WooCommerce); err != nil || len(got) != 2 {
		t.Fatalf("from a file: %v %v", got, err)
	}
	// A chart the index does not list has no versions (the lifecycle refuses them all).
	if got, err := NewIndex(good).Versions(ctx, "magento"); err != nil || len(got) != 0 {
		t.Fatalf("unlisted chart: %v %v", got, err)
	}
	_, err := NewIndex(bad).Versions(ctx, store.WooCommerce)
	if err == nil || errors.Is(err, store.ErrVersionsUnknown) {
		t.Fatalf("a file that is no index: %v", err)
	}
}
