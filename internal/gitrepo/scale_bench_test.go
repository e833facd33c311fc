package gitrepo

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/scalebench"
)

// scaleSizes are the fleet sizes docs/scale.md fits its lines through; 0 is the
// baseline measured in the same run (each figure is also given as a ratio to it).
var scaleSizes = []int{0, 2500, 5000, 10000}

// BenchmarkScaleWriter measures, at each of scaleSizes, what docs/scale.md calls the
// Git writer and the Git server: single-create commit + push latency over HTTP (what
// gitops-api with --fleet-url pays), the same to a path remote (this package's own
// cost, no server process), `git receive-pack` alone on the bare repository (the
// server's floor), grouped throughput from 100 clients over HTTP and to a path, and
// the served repository's size. It logs a linear fit of each figure against the
// store count with its R², residuals and the values at 50,000 and 100,000 stores.
// Run with `make bench-scale-writer`.
func BenchmarkScaleWriter(b *testing.B) {
	type series struct {
		name, unit string
		y          []float64
	}
	lat := map[string]*series{}
	var order []string
	add := func(key, unit string, v float64) {
		s, ok := lat[key]
		if !ok {
			s = &series{name: key, unit: unit}
			lat[key] = s
			order = append(order, key)
		}
		s.y = append(s.y, v)
	}
	for _, n := range scaleSizes {
		for _, impl := range []string{"gitrepo", "gitrepo-path", "receive-pack-floor"} {
			// No sub-benchmark: Go would re-run a short one with growing b.N, and each
			// run here is a fixed set of requests; the parent runs once.
			var samples []time.Duration
			apply := setupLatency(b, n, impl)
			for j := range latencyRequests {
				name := fmt.Sprintf("scale-%05d", j)
				t0 := time.Now()
				apply(name)
				samples = append(samples, time.Since(t0))
			}
			p50, p95 := percentile(samples, 0.5), percentile(samples, 0.95)
			b.Logf("stores=%d %s: p50 %v p95 %v over %d creates", n, impl, p50, p95, len(samples))
			add(impl+" p50", "ms", float64(p50.Microseconds())/1000)
		}
		for _, rem := range []string{"http", "path"} {
			perSec, perCommit := scaleThroughput(b, n, rem, 100, 2000)
			b.Logf("stores=%d group remote=%s 100 clients: %.1f stores/s, %.1f stores a commit", n, rem, perSec, perCommit)
			add("group "+rem+" throughput", "stores/s", perSec)
			add("group "+rem+" stores per commit", "stores", perCommit)
		}
		add("bare repository size", "MiB", float64(diskKiB(b, fleetFixture(b, n)))/1024)
	}
	xs := make([]float64, 0, len(scaleSizes)-1)
	for _, n := range scaleSizes[1:] {
		xs = append(xs, float64(n))
	}
	for _, key := range order {
		s := lat[key]
		// The fit goes through the measured sizes, not the baseline at 0: an empty
		// fleet is a different regime (a tiny root tree) and would bend the line.
		f, err := scalebench.Linear(xs, s.y[1:])
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s (%s): measured %v; at 0 (baseline) %.4g; 10000 ÷ 0 = %.2f×; fit %s", s.name, s.unit, s.y[1:], s.y[0], s.y[len(s.y)-1]/s.y[0], f)
	}
	b.ReportMetric(lat["gitrepo p50"].y[3], "http-p50-ms@10000")
	b.ReportMetric(lat["receive-pack-floor p50"].y[3], "floor-p50-ms@10000")
	b.ReportMetric(lat["group http throughput"].y[3], "http-stores/s@10000")
}

// scaleThroughput is BenchmarkGroupThroughput's loop for any fleet size: c clients
// submitting total creates at once; stores/s and stores per commit.
func scaleThroughput(b *testing.B, n int, rem string, c, total int) (perSec, perCommit float64) {
	var url, bare string
	if rem == "http" {
		url, bare = httpFleet(b, n)
	} else {
		bare = pathFleet(b, n)
		url = bare
	}
	ctx := context.Background()
	r, err := Open(ctx, Options{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	before, _ := strconv.Atoi(strings.TrimSpace(runGit(b, bare, "rev-list", "--count", "main")))
	var wg sync.WaitGroup
	var next, done atomic.Int64
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1)
				if k > int64(total) {
					return
				}
				name := fmt.Sprintf("tp-%05d", k)
				if res := r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)); res.Err != nil {
					b.Error(res.Err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	after, _ := strconv.Atoi(strings.TrimSpace(runGit(b, bare, "rev-list", "--count", "main")))
	return float64(done.Load()) / el.Seconds(), float64(done.Load()) / float64(max(1, after-before))
}

// diskKiB is what `du` says the repository takes on disk.
func diskKiB(b *testing.B, dir string) int {
	out, err := exec.Command("du", "-sk", dir).Output()
	if err != nil {
		b.Fatal(err)
	}
	kb, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		b.Fatal(err)
	}
	return kb
}
