package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/dashboard"
	"github.com/storefleet/storefleet/internal/dashboard/browsertest"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/fleetfixture"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// BenchmarkListFirstRender: the list page's first render in Chromium with 10,000
// stores in the fleet (a fresh page load until the first 100 rows are in the
// table, as the page itself measures it from navigation start), against a bare
// GET /api/v1/stores?limit=100 from Go in the same run, so that the machine's load
// falls on both alike. Reports both p50s and their ratio.
func BenchmarkListFirstRender(b *testing.B) {
	size := 10000
	if v, err := strconv.Atoi(os.Getenv("DASHBOARD_BENCH_STORES")); err == nil && v > 0 {
		size = v // a smaller fleet to try the benchmark out
	}
	git, err := githttp.New(b.TempDir())
	if err != nil {
		b.Fatalf("git http-backend is needed: %v", err)
	}
	bare, err := git.InitBare("fleet.git")
	if err != nil {
		b.Fatal(err)
	}
	if err := git.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { git.Close() })
	ctx := context.Background()
	r := render.Renderer{Options: render.LocalOptions()}
	if err := fleetfixture.Fill(ctx, bare, size); err != nil {
		b.Fatal(err)
	}
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: git.URL() + "/fleet.git"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: r,
		Charts: chartindex.Dir{Path: filepath.Join("..", "..", "charts")}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close() })
	svc.WaitLoaded()
	// The Tracker as with a cluster, so the page's one stream is open as in use.
	tr := status.New(status.Options{})
	b.Cleanup(tr.Close)
	tr.SetConnected(true)
	srv := httptest.NewServer(dashboard.Mount(api.Handler(status.Service{Stores: svc, T: tr, ShardOf: store.Shard}, api.Options{Status: tr}), nil))
	// Closed after the browser (cleanups run last first): the page's open event
	// stream would hold srv.Close otherwise.
	b.Cleanup(srv.Close)

	// The benchmark's own bound, wide enough for any -benchtime on this machine.
	page0 := browsertest.Start(b, "chromium", 30*time.Minute)
	client := &http.Client{}
	var page, bare100, text100 []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := client.Get(srv.URL + "/api/v1/stores?limit=100")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		bare100 = append(bare100, time.Since(t0))
		// The text filter's worst case: the 100 matches are the last 100 names, so
		// the whole index is scanned for one page.
		t0 = time.Now()
		resp, err = client.Get(srv.URL + fmt.Sprintf("/api/v1/stores?limit=100&q=fixture-%03d", (size-1)/100))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		text100 = append(text100, time.Since(t0))

		// A new document each time (about:blank between), so nothing is reused but
		// the browser's HTTP cache, which the assets' no-cache revalidates.
		page0.Open("about:blank")
		page0.Open(srv.URL + "/#/")
		shown, err := page0.D.Eval(page0.Context(), `new Promise((done) => {
			const check = () => document.querySelectorAll('tbody tr').length >= 100 ? done(performance.now()) : requestAnimationFrame(check);
			check();
		})`)
		ms, perr := strconv.ParseFloat(shown, 64)
		if err != nil || perr != nil {
			b.Fatalf("the list never showed 100 rows: %v %v\n%s", err, perr, page0.Eval("document.body.innerText"))
		}
		page = append(page, time.Duration(ms*float64(time.Millisecond)))
	}
	b.StopTimer()
	p50 := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(float64(p50(page))/float64(time.Millisecond), "render-p50-ms")
	b.ReportMetric(float64(p50(bare100))/float64(time.Millisecond), "api100-p50-ms")
	b.ReportMetric(float64(p50(page))/float64(p50(bare100)), "render/api")
	b.ReportMetric(float64(p50(text100))/float64(time.Millisecond), "api100-q-p50-ms")
	b.ReportMetric(float64(p50(text100))/float64(p50(bare100)), "q/api")
}
