package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/render"
)

// procUsage is a process's resident memory and CPU time so far, from /proc.
func procUsage(pid int) (rssMiB, cpuSeconds float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			rssMiB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command (which may hold spaces) in parentheses: utime and
	// stime are the 14th and 15th of the line, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return rssMiB, (utime + stime) / 100, nil
}

// BenchmarkFluxShardsBurst measures what a second Flux controller shard costs: a
// burst of stores (half on each controller shard of two), pushed in one commit,
// until every HelmRelease is Ready, on an environment with one set of controllers
// (K=1, the baseline) and one with two (K=2), alternated K=1, K=2, K=2, K=1 so drift
// on the shared machine falls on both. Metrics: burst seconds for each and their
// ratio; RSS and CPU seconds of the extra pair after the burst; CPU of every
// kustomize-controller and helm-controller together, K=2 over K=1. Two cores
// cannot show a speed-up: the controllers already share them.
func BenchmarkFluxShardsBurst(b *testing.B) {
	const stores = 16
	used := map[string]bool{}
	names := append(fluxShardStores(b, 2, "", "burst-a", stores/2, used), fluxShardStores(b, 2, "shard1", "burst-b", stores/2, used)...)
	var burst, cpu [3]time.Duration
	var runs [3]int
	var extraRSS, extraCPU, mainRSS float64
	for range b.N {
		for _, k := range []render.FluxShards{1, 2, 2, 1} {
			u := fluxShardsBurst(b, k, names)
			burst[k] += u.wall
			cpu[k] += u.cpu
			runs[k]++
			if k == 2 {
				extraRSS += u.extraRSS
				extraCPU += u.extraCPU
			} else {
				mainRSS += u.mainRSS
			}
		}
	}
	one, two := burst[1].Seconds()/float64(runs[1]), burst[2].Seconds()/float64(runs[2])
	b.ReportMetric(one, "burst-s-k1")
	b.ReportMetric(two, "burst-s-k2")
	b.ReportMetric(two/one, "burst-k2/k1")
	b.ReportMetric(cpu[2].Seconds()/cpu[1].Seconds(), "controller-cpu-k2/k1")
	b.ReportMetric(extraRSS/float64(runs[2]), "extra-pair-rss-MiB")
	b.ReportMetric(mainRSS/float64(runs[1]), "k1-pair-rss-MiB")
	b.ReportMetric((extraRSS/float64(runs[2]))/(mainRSS/float64(runs[1])), "extra/k1-pair-rss")
	b.ReportMetric(extraCPU/float64(runs[2]), "extra-pair-cpu-s")
}

// burstUsage is what one burst cost: the wall time from the push until every store
// was Ready, the CPU time all kustomize-controllers and helm-controllers spent from
// just before the push, the RSS and CPU (since start) of the extra pairs, and the
// RSS of the main pair, all after the burst.
type burstUsage struct {
	wall, cpu                   time.Duration
	extraRSS, extraCPU, mainRSS float64
}

// fluxShardsBurst starts an environment with k controller shards, pushes the
// stores in one commit and waits until all are Ready.
func fluxShardsBurst(b *testing.B, k render.FluxShards, names []string) (u burstUsage) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "storefleet-testenv-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	charts := fixtureCharts() // its own: tests bump the shared copy's version
	defer os.RemoveAll(charts)
	e, err := Start(ctx, Options{Dir: dir, ChartsDir: charts, FluxShards: k})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Stop()
	controllers := func() (sum float64) {
		for name, pid := range e.PIDs() {
			if c := componentOf(name); c == "kustomize-controller" || c == "helm-controller" {
				_, s, err := procUsage(pid)
				if err != nil {
					b.Fatal(err)
				}
				sum += s
			}
		}
		return sum
	}
	w := cloneFleet(b, e)
	for _, n := range names {
		w.writeShardedStore(k, n, false)
	}
	before := controllers()
	start := time.Now()
	if _, err := e.Reconcile(ctx, w.push("burst")); err != nil {
		b.Fatal(err)
	}
	for _, n := range names {
		key := client.ObjectKey{Namespace: "store-" + n, Name: n}
		if err := Poll(ctx, 20*time.Millisecond, func() (bool, string, error) {
			u, err := e.get(ctx, helmReleaseGVK, key)
			if err != nil {
				return false, err.Error(), nil
			}
			ok, msg := IsReady(u)
			return ok, msg, nil
		}); err != nil {
			b.Fatalf("HelmRelease %s: %v", key, err)
		}
	}
	u.wall = time.Since(start)
	u.cpu = time.Duration((controllers() - before) * float64(time.Second))
	pids := e.PIDs()
	for _, key := range k.Keys() {
		for _, c := range []string{"kustomize-controller-", "helm-controller-"} {
			rss, s, err := procUsage(pids[c+key])
			if err != nil {
				b.Fatal(err)
			}
			u.extraRSS += rss
			u.extraCPU += s
		}
	}
	for _, c := range []string{"kustomize-controller", "helm-controller"} {
		rss, _, err := procUsage(pids[c])
		if err != nil {
			b.Fatal(err)
		}
		u.mainRSS += rss
	}
	return u
}
