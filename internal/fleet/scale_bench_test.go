package fleet_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/fleetfixture"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/scalebench"
)

// BenchmarkScaleMemory is docs/scale.md's "gitops-api at rest" limit: what the
// fleet side of gitops-api holds per store once started with no cluster — the
// in-memory clone of the fleet (gitrepo.Open without Dir, as `serve --fleet-url`
// runs) and the fleet service's index after its warm-up has read every spec. For
// fleets of 2,500, 5,000 and 10,000 stores (fleetfixture: basic WooCommerce
// stores written through the writer, 1,000 a commit), each opened in turn, it
// records the Go heap in use after a full GC above the same process before the
// open (the baseline of the same run: an empty fleet, measured first), and the time
// until the warm-up is done; it logs a linear fit of each over the three sizes and
// its values at 50,000 and 100,000 stores. The status tracker and the informers
// are BenchmarkScaleAPIServer's (internal/status/e2e). `make bench-scale-memory`.
func BenchmarkScaleMemory(b *testing.B) {
	ctx := context.Background()
	sizes := []int{0, 2500, 5000, 10000}
	var heaps, loads []float64
	for _, n := range sizes {
		git, err := githttp.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		bare, err := git.InitBare("fleet.git")
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if n > 0 {
			if err := fleetfixture.Fill(ctx, bare, n); err != nil {
				b.Fatal(err)
			}
		}
		filled := time.Since(t0)
		base := heapInuse()
		t0 = time.Now()
		repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: bare})
		if err != nil {
			b.Fatal(err)
		}
		svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: renderer, Cluster: "local"})
		if err != nil {
			b.Fatal(err)
		}
		svc.WaitLoaded()
		loaded := time.Since(t0)
		got := 0
		for _, c := range svc.TenantCounts() {
			got += c
		}
		if got != n {
			b.Fatalf("fleet of %d: the service counts %d stores", n, got)
		}
		heap := heapInuse() - base
		b.Logf("stores=%d: filled in %v; open + warm-up %v; heap +%.1f MiB (%.1f KiB a store); process RSS %.0f MiB",
			n, filled.Round(time.Millisecond), loaded.Round(time.Millisecond), heap/(1<<20), heap/1024/float64(max(n, 1)), rssMiB())
		heaps = append(heaps, heap/(1<<20))
		loads = append(loads, loaded.Seconds())
		svc.Close()
		repo.Close()
	}
	xs := []float64{2500, 5000, 10000}
	for _, s := range []struct {
		name string
		y    []float64
	}{{"gitops-api fleet heap at rest (MiB)", heaps}, {"open + warm-up (s)", loads}} {
		f, err := scalebench.Linear(xs, s.y[1:])
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: at 0 (baseline) %.4g; 2500/5000/10000 %.4g; 10000 ÷ 0 = %.1f×; fit %s", s.name, s.y[0], s.y[1:], s.y[3]/s.y[0], f)
	}
	b.ReportMetric(heaps[3], "heap-MiB@10000")
	b.ReportMetric(heaps[3]*1024/10000, "KiB/store")
}

func heapInuse() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse)
}

func rssMiB() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
