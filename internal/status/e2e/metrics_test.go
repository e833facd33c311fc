package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/storefleet/storefleet/internal/store"
)

// scrape reads gitops-api's /metrics as Prometheus would and parses it.
func scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + apiMetrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// sum adds up a family's samples whose labels include want (counters and gauges
// by value, histograms by count).
func sum(mf *dto.MetricFamily, want map[string]string) float64 {
	total := 0.0
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// TestMetricsAfterAStoresLife runs a store's whole life through gitops-api on the
// real control plane and Flux — create, ready, delete, purge — then scrapes
// /metrics from the internal listener: every Storefleet family is there, the life
// shows in them, everything lints clean with client_golang's promlint, and no label
// carries the store's name.
func TestMetricsAfterAStoresLife(t *testing.T) {
	a := startAPI(t)
	const name = "metered"
	retainedStore(t, a, name)
	a.do(t, http.MethodDelete, "/api/v1/stores/"+name+"?purge=true", nil, http.StatusAccepted)
	got, _, _ := a.events(t, "/api/v1/stores/"+name+"/events", "").phases(t, 3*time.Minute)
	if got[len(got)-1] != store.PhaseDeleted {
		t.Fatalf("purge: phases %v", got)
	}

	mfs := scrape(t)
	fam := func(n string) *dto.MetricFamily { return mfs[n] }
	for _, c := range []struct {
		family  string
		labels  map[string]string
		atLeast float64
	}{
		{"storefleet_http_requests_total", map[string]string{"route": "/api/v1/stores", "method": "POST", "code": "202"}, 1},
		{"storefleet_http_requests_total", map[string]string{"route": "/api/v1/stores/{name}", "method": "DELETE", "code": "202"}, 2},
		{"storefleet_http_request_duration_seconds", map[string]string{"route": "/api/v1/stores/{name}", "method": "DELETE"}, 2},
		// create, delete, the purge's two steps
		{"storefleet_fleet_commits_total", nil, 4},
		{"storefleet_fleet_commit_duration_seconds", nil, 4},
		{"storefleet_fleet_commit_stores", nil, 4},
		{"storefleet_fleet_push_failures_total", nil, 0},
		{"storefleet_fleet_write_queue_depth", nil, 0},
		{"storefleet_shard_publish_queue_depth", nil, 0},
		{"storefleet_shard_publishes_total", map[string]string{"result": "ok"}, 4},
		{"storefleet_shard_publish_duration_seconds", nil, 4},
		{"storefleet_store_request_to_ready_seconds", nil, 1},
		{"storefleet_stores", map[string]string{"phase": "ready"}, 0},
		{"storefleet_stores_by_tenant", nil, 0},
		{"storefleet_cluster_connected", nil, 1},
		// HelmRelease, ExternalArtifact and Kustomization Ready changes were seen
		{"storefleet_watch_lag_seconds", nil, 1},
		{"storefleet_cluster_reconnects_total", nil, 0},
		{"storefleet_authentications_total", nil, 0},
		{"storefleet_rate_limited_requests_total", nil, 0},
	} {
		if v := sum(fam(c.family), c.labels); v < c.atLeast {
			t.Errorf("%s%v = %v, want at least %v", c.family, c.labels, v, c.atLeast)
		}
	}
	// The families a store's life does not touch are there too, at zero, so none is
	// missing from the list above by accident.
	var ours []string
	for n := range mfs {
		if strings.HasPrefix(n, "storefleet_") {
			ours = append(ours, n)
		}
	}
	sort.Strings(ours)
	if len(ours) != 18 {
		t.Errorf("%d storefleet families, want 18: %v", len(ours), ours)
	}
	// Cardinality: no label value names the store (routes are patterns).
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), name) {
					t.Errorf("%s has a label naming the store: %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}

	list := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		list = append(list, mf)
	}
	problems, err := testutil.GatherAndLint(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return list, nil }))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	t.Logf("%d families scraped, %s", len(mfs), fmt.Sprint(ours))
}
