package gitrepo

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
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
// the served repository's size. The sizes take turns (120 single creates each, one
// at a time round the sizes; three grouped bursts of 500 each, median), so the
// shared machine's load falls on every size alike. It logs a linear fit of each figure against the
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
	// The sizes take turns, request by request and round by round, so that the load
	// of a shared machine weighs on every size alike: a size measured alone in a busy
	// minute would bend the line more than the fleet does.
	impls := []string{"gitrepo", "gitrepo-path", "receive-pack-floor"}
	samples := map[string]map[int][]time.Duration{}
	applies := map[string]map[int]func(string){}
	for _, impl := range impls {
		samples[impl], applies[impl] = map[int][]time.Duration{}, map[int]func(string){}
		for _, n := range scaleSizes {
			applies[impl][n] = setupLatency(b, n, impl)
		}
	}
	for j := range scaleRequests {
		for _, impl := range impls {
			for _, n := range scaleSizes {
				t0 := time.Now()
				applies[impl][n](fmt.Sprintf("scale-%05d", j))
				samples[impl][n] = append(samples[impl][n], time.Since(t0))
			}
		}
	}
	for _, impl := range impls {
		for _, n := range scaleSizes {
			p50, p95 := percentile(samples[impl][n], 0.5), percentile(samples[impl][n], 0.95)
			b.Logf("stores=%d %s: p50 %v p95 %v over %d creates", n, impl, p50, p95, len(samples[impl][n]))
			add(impl+" p50", "ms", float64(p50.Microseconds())/1000)
		}
	}
	for _, rem := range []string{"http", "path"} {
		rates := map[int][]float64{}
		perCommit := map[int][]float64{}
		for round := range scaleRounds {
			for _, n := range scaleSizes {
				r, c := scaleThroughput(b, n, rem, 100, 500, round)
				rates[n] = append(rates[n], r)
				perCommit[n] = append(perCommit[n], c)
			}
		}
		for _, n := range scaleSizes {
			b.Logf("stores=%d group remote=%s 100 clients: %.1f stores/s (rounds %.0f), %.1f stores a commit", n, rem, median(rates[n]), rates[n], median(perCommit[n]))
			add("group "+rem+" throughput", "stores/s", median(rates[n]))
			add("group "+rem+" stores per commit", "stores", median(perCommit[n]))
			// Throughput is stores per commit over time per commit; the time per commit
			// is what grows with the fleet, so it is the series to fit a line to.
			add("group "+rem+" time per commit", "ms", 1000*median(perCommit[n])/median(rates[n]))
		}
	}
	for _, n := range scaleSizes {
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

// scaleRequests is how many single creates each size and writer gets, taking turns;
// scaleRounds how many grouped bursts of 500 creates each size gets (median taken).
const (
	scaleRequests = 120
	scaleRounds   = 3
)

func median(v []float64) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}

// scaleThroughput is BenchmarkGroupThroughput's loop for any fleet size: c clients
// submitting total creates at once; stores/s and stores per commit. round keeps the
// store names of successive rounds apart.
func scaleThroughput(b *testing.B, n int, rem string, c, total, round int) (perSec, perCommit float64) {
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
				name := fmt.Sprintf("tp-%d-%05d", round, k)
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
