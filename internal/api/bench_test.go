package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/fleetfixture"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// benchFleet serves a fleet repository holding size stores over git http-backend and
// the API over HTTP on top of it.
type benchFleet struct {
	api     *httptest.Server
	svc     *fleet.Service
	repo    *gitrepo.Repo
	render  render.Renderer
	startup time.Duration // gitrepo.Open + the store names: the API can serve
	loaded  time.Duration // until every store's spec is read (background warm-up)
	close   func()
}

func newBenchFleet(b *testing.B, size int) *benchFleet {
	b.Helper()
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
	ctx := context.Background()
	r := render.Renderer{Options: render.LocalOptions()}
	if size > 0 {
		// Fill the fleet through the writer on the bare repository's path, 1,000 stores
		// a commit: the fixture is built the same way the API writes.
		if err := fleetfixture.Fill(ctx, bare, size); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: git.URL() + "/fleet.git"})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: r})
	if err != nil {
		b.Fatal(err)
	}
	startup := time.Since(t0)
	svc.WaitLoaded()
	loaded := time.Since(t0)
	ts := httptest.NewServer(api.Handler(svc, api.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	return &benchFleet{api: ts, svc: svc, repo: repo, render: r, startup: startup, loaded: loaded, close: func() {
		ts.Close()
		svc.Close()
		repo.Close()
		git.Close()
	}}
}

var benchSeq atomic.Int64

// BenchmarkHTTPCreate measures POST /api/v1/stores end to end (HTTP, validation,
// render, commit, push over HTTP to git http-backend) into an empty fleet (the
// baseline) and a 10,000-store fleet, with 1 and 100 concurrent clients. Each
// request returns only once its commit is pushed.
func BenchmarkHTTPCreate(b *testing.B) {
	sizes := []int{0, 10000}
	if testing.Short() {
		sizes = sizes[:1] // -short: the empty fleet only, for quick profiling
	}
	for _, size := range sizes {
		// Built once per size by the parent benchmark (its temp dirs live until it
		// ends), shared by the sub-benchmarks; each create adds one store to it.
		f := newBenchFleet(b, size)
		for _, conc := range []int{1, 100} {
			b.Run(fmt.Sprintf("fleet=%d/clients=%d", size, conc), func(b *testing.B) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
				lat := make([]time.Duration, 0, b.N)
				var mu sync.Mutex
				var next atomic.Int64
				var failed atomic.Int64
				b.ResetTimer()
				t0 := time.Now()
				var wg sync.WaitGroup
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							name := fmt.Sprintf("bench-%d", benchSeq.Add(1))
							body := `{"name":"` + name + `","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`
							s := time.Now()
							res, err := client.Post(f.api.URL+"/api/v1/stores", "application/json", strings.NewReader(body))
							if err != nil {
								failed.Add(1)
								continue
							}
							rb, _ := io.ReadAll(res.Body)
							res.Body.Close()
							if res.StatusCode != http.StatusAccepted && failed.Load() == 0 {
								b.Logf("%s", rb)
							}
							if res.StatusCode != http.StatusAccepted {
								if failed.Add(1) == 1 {
									b.Logf("create %s: %d", name, res.StatusCode)
								}
								continue
							}
							d := time.Since(s)
							mu.Lock()
							lat = append(lat, d)
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(t0)
				b.StopTimer()
				if n := failed.Load(); n > 0 {
					b.Fatalf("%d of %d creates failed", n, b.N)
				}
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				pct := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
				}
				b.ReportMetric(float64(f.startup.Milliseconds()), "startup-ms")
				b.ReportMetric(float64(f.loaded.Milliseconds()), "index-loaded-ms")
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "stores/s")
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
			})
		}
		for _, conc := range []int{1, 100} {
			b.Run(fmt.Sprintf("fleet=%d/baseline-gitrepo-submit/clients=%d", size, conc), func(b *testing.B) {
				benchDirect(b, f, conc)
			})
		}
		f.close()
	}
}

// benchDirect is the baseline: the same creates rendered and submitted straight to
// the writer, with no HTTP, JSON decoding, validation or service in between.
func benchDirect(b *testing.B, f *benchFleet, conc int) {
	change := func() gitrepo.Change {
		s := store.Store{Name: fmt.Sprintf("direct-%d", benchSeq.Add(1)), Engine: store.WooCommerce, Plan: "basic",
			Settings: store.Settings{AdminEmail: "a@example.com"}}
		s = s.WithDefaults("")
		files, err := f.render.Render(s, store.StateActive)
		if err != nil {
			b.Fatal(err)
		}
		dir := store.Dir(s.Cluster, s.Name)
		c := gitrepo.Change{Store: s.Name, Cluster: s.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "bench", RequestID: s.Name}
		for _, fl := range files {
			c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(fl.Path, dir+"/"), Content: fl.Content})
		}
		return c
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				s := time.Now()
				if res := f.repo.Submit(context.Background(), change()); res.Err != nil {
					b.Error(res.Err)
					return
				}
				lat[i] = time.Since(s)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "stores/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(b.N-1, b.N*99/100)].Microseconds())/1000, "p99-ms")
}
