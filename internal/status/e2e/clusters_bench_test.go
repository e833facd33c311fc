package e2e

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testenv"
)

// BenchmarkClusterCost: what one more served cluster costs gitops-api, in one run on
// the same two control planes: goroutines and live heap of this process with no
// gitops-api (the baseline), with gitops-api serving east alone, then east and west,
// each measured once every served cluster is connected (watches listed) and after a
// GC. It reports each figure and the ratio of the two-cluster cost to the
// one-cluster cost (both above the baseline).
func BenchmarkClusterCost(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	seed := fleetSeed(b, root, "east", "west")
	east := startCluster(ctx, b, root, seed, "east")
	west := startCluster(ctx, b, root, seed, "west")
	if east == nil || west == nil {
		b.FailNow()
	}
	base := measureProcess()
	costs := map[int]processCost{}
	for _, n := range []int{1, 2} {
		args := []string{"--cluster", "east"}
		if n == 2 {
			args = append(args, "--cluster-kubeconfig", "west="+west.Kubeconfig)
		}
		artifacts, err := freeAddr()
		if err != nil {
			b.Fatal(err)
		}
		a, err := launchServe(east, "127.0.0.1:0", b.TempDir(), artifacts, "none", "gitops-api-cost.log", args...)
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(string(a.do(b, http.MethodGet, "/readyz", nil, http.StatusOK)), `"cluster":"connected"`) {
			if time.Now().After(deadline) {
				b.Fatalf("%d clusters: not connected after 2m", n)
			}
			time.Sleep(200 * time.Millisecond)
		}
		costs[n] = measureProcess()
		if err := a.stop(); err != nil {
			b.Logf("gitops-api stopped: %v", err)
		}
	}
	one, two := costs[1].minus(base), costs[2].minus(base)
	b.ReportMetric(float64(one.goroutines), "goroutines-1cluster")
	b.ReportMetric(float64(two.goroutines), "goroutines-2clusters")
	b.ReportMetric(float64(two.goroutines)/float64(one.goroutines), "goroutines-2/1")
	b.ReportMetric(float64(one.heap)/(1<<20), "heap-MiB-1cluster")
	b.ReportMetric(float64(two.heap)/(1<<20), "heap-MiB-2clusters")
	b.ReportMetric(float64(two.heap)/float64(one.heap), "heap-2/1")
}

type processCost struct {
	goroutines int
	heap       int64 // bytes in use after a GC
}

func measureProcess() processCost {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return processCost{goroutines: runtime.NumGoroutine(), heap: int64(m.HeapInuse)}
}

func (c processCost) minus(base processCost) processCost {
	return processCost{goroutines: c.goroutines - base.goroutines, heap: c.heap - base.heap}
}
