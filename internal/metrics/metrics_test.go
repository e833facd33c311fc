package metrics_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/storefleet/storefleet/internal/metrics"
)

// TestLint: every family passes promlint (names, units, help), exercised once so
// that histograms and labelled counters have series to lint.
func TestLint(t *testing.T) {
	m := metrics.New()
	m.HTTPRequest(http.MethodGet, "/api/v1/stores/{name}", 200, time.Millisecond)
	m.Authentication("oidc", "ok")
	m.RateLimited("writes")
	m.Commit(3, 20*time.Millisecond)
	m.PushFailed("conflict")
	c := m.Cluster("east")
	c.ShardPublished(time.Millisecond, errors.New("boom"))
	c.WatchLag(time.Second)
	m.Ready(42 * time.Second)
	c.WatchPhases(func() map[string]int { return map[string]int{"ready": 2} })
	m.WatchQueue(func() int { return 1 })
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "storefleet_stores"); err != nil || n != 13 {
		t.Fatalf("storefleet_stores has %d series (%v), want one per known phase (13)", n, err)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	ready := -1.0
	for _, mf := range mfs {
		if mf.GetName() != "storefleet_stores" {
			continue
		}
		for _, s := range mf.GetMetric() {
			if s.GetLabel()[1].GetValue() == "ready" {
				ready = s.GetGauge().GetValue()
			}
		}
	}
	if ready != 2 {
		t.Fatalf("ready stores %v, want 2", ready)
	}
}

// TestCardinalityBounded: a client sending many paths and made-up methods adds no
// series beyond the route patterns the router knows.
func TestCardinalityBounded(t *testing.T) {
	m := metrics.New()
	for i := 0; i < 500; i++ {
		m.HTTPRequest("X"+strings.Repeat("Y", i%7), "", 404, time.Millisecond)
		m.HTTPRequest(http.MethodGet, "/api/v1/stores/{name}", 200, time.Millisecond)
	}
	n, err := testutil.GatherAndCount(m.Registry(), "storefleet_http_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d series for 1000 requests over 500 paths and 7 methods, want 2 (unmatched/other and the route)", n)
	}
}

// The Grafana dashboard (docs/grafana-dashboard.json) queries only families this
// package exports: a renamed metric would leave a panel empty without anyone
// noticing.
func TestDashboardQueriesExistingFamilies(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	m := metrics.New()
	// The families with no series until something happens: a request, and the
	// tenants once serve wires them.
	m.HTTPRequest(http.MethodGet, "/healthz", 200, time.Millisecond)
	m.WatchTenants(func() map[string]int { return map[string]int{"acme": 1} }, 1)
	c := m.Cluster("east")
	c.ShardPublished(time.Millisecond, nil)
	c.WatchLag(time.Second)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		known[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			known[n+s] = true
		}
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range regexp.MustCompile(`storefleet_[a-z_]+`).FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
				if !known[n] {
					t.Errorf("panel %q queries %s, which is not exported", p.Title, n)
				}
			}
		}
	}
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "storefleet_") && !used[n] {
			t.Errorf("%s is on no panel of the dashboard", n)
		}
	}
}

// Per-tenant series stop at the cap: the tenants with the most stores keep theirs,
// the rest are summed, and stores not read yet are counted apart.
func TestTenantCap(t *testing.T) {
	m := metrics.New()
	counts := map[string]int{"acme": 5, "beta": 7, "gamma": 1, "delta": 2, "": 3}
	for i := 0; i < 1000; i++ {
		counts[fmt.Sprintf("t%04d", i)] = 1
	}
	m.WatchTenants(func() map[string]int { return counts }, 2)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "storefleet_stores_by_tenant" {
			for _, s := range mf.GetMetric() {
				got[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{"beta": 7, "acme": 5, metrics.OtherTenants: 1003, metrics.UnknownTenant: 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stores by tenant %v, want %v", got, want)
	}
	problems, err := testutil.GatherAndLint(m.Registry(), "storefleet_stores_by_tenant")
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// With no store at all the family is still there: the rest, at zero.
func TestTenantsWithNoStore(t *testing.T) {
	m := metrics.New()
	m.WatchTenants(func() map[string]int { return nil }, 50)
	if n, err := testutil.GatherAndCount(m.Registry(), "storefleet_stores_by_tenant"); err != nil || n != 1 {
		t.Fatalf("%d series (%v), want the rest at zero", n, err)
	}
}

// The first connection is no reconnect; each one after a loss is. Each cluster
// counts its own.
func TestReconnects(t *testing.T) {
	m := metrics.New()
	east, west := m.Cluster("east"), m.Cluster("west")
	for _, ok := range []bool{true, false, true, false, true} {
		east.Connected(ok)
	}
	west.Connected(true)
	west.Connected(false)
	want := `
# HELP storefleet_cluster_connected 1 while the status watcher reaches the cluster's API server, 0 while it does not (its stores then show unknown).
# TYPE storefleet_cluster_connected gauge
storefleet_cluster_connected{cluster="east"} 1
storefleet_cluster_connected{cluster="west"} 0
# HELP storefleet_cluster_reconnects_total Times the status watcher got the cluster back after losing it.
# TYPE storefleet_cluster_reconnects_total counter
storefleet_cluster_reconnects_total{cluster="east"} 2
storefleet_cluster_reconnects_total{cluster="west"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "storefleet_cluster_connected", "storefleet_cluster_reconnects_total"); err != nil {
		t.Fatal(err)
	}
}

// Every per-cluster family carries the cluster, so two clusters' stores, queues
// and publishers are told apart; a cluster's series exist at zero once it is served.
func TestPerClusterSeries(t *testing.T) {
	m := metrics.New()
	east, west := m.Cluster("east"), m.Cluster("west")
	east.WatchPhases(func() map[string]int { return map[string]int{"ready": 3, "unknown": 0} })
	west.WatchPhases(func() map[string]int { return map[string]int{"ready": 1, "unknown": 4} })
	east.WatchPublishQueue(func() int { return 2 })
	west.ShardPublished(time.Millisecond, nil)
	want := `
# HELP storefleet_shard_publish_queue_depth Shards with pushed commits waiting for their publish (in flight included), by cluster.
# TYPE storefleet_shard_publish_queue_depth gauge
storefleet_shard_publish_queue_depth{cluster="east"} 2
storefleet_shard_publish_queue_depth{cluster="west"} 0
# HELP storefleet_shard_publishes_total Shard artifacts published for Flux, by cluster and result.
# TYPE storefleet_shard_publishes_total counter
storefleet_shard_publishes_total{cluster="east",result="error"} 0
storefleet_shard_publishes_total{cluster="east",result="ok"} 0
storefleet_shard_publishes_total{cluster="west",result="error"} 0
storefleet_shard_publishes_total{cluster="west",result="ok"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"storefleet_shard_publish_queue_depth", "storefleet_shard_publishes_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "storefleet_stores" {
			continue
		}
		for _, s := range mf.GetMetric() {
			l := s.GetLabel()
			if l[1].GetValue() == "ready" || l[1].GetValue() == "unknown" {
				got[l[0].GetValue()+"/"+l[1].GetValue()] = s.GetGauge().GetValue()
			}
		}
	}
	if want := map[string]float64{"east/ready": 3, "east/unknown": 0, "west/ready": 1, "west/unknown": 4}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("storefleet_stores %v, want %v", got, want)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "storefleet_stores"); err != nil || n != 26 {
		t.Fatalf("storefleet_stores has %d series (%v), want each known phase for each cluster (26)", n, err)
	}
}
