package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/metrics"
)

// BenchmarkObserverCost: what counting a request costs — the handler with the
// Prometheus observer against the same handler with none, in alternating rounds
// of the same run so that a busy machine slows both alike — on the cheapest route
// and in process, so that no network or store work hides it. Reports ns per
// request for each and their ratio. docs/benchmarks.md, "Metrics".
func BenchmarkObserverCost(b *testing.B) {
	plain := api.Handler(nil, api.Options{})
	observed := api.Handler(nil, api.Options{Observer: metrics.New()})
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	const round = 500
	run := func(h http.Handler) time.Duration {
		start := time.Now()
		for i := 0; i < round; i++ {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
		return time.Since(start)
	}
	var tPlain, tObserved time.Duration
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			tPlain += run(plain)
			tObserved += run(observed)
		} else {
			tObserved += run(observed)
			tPlain += run(plain)
		}
	}
	n := float64(b.N * round)
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "ns/req-none")
	b.ReportMetric(float64(tObserved.Nanoseconds())/n, "ns/req-observed")
	b.ReportMetric(float64(tObserved)/float64(tPlain), "ratio")
}
