package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	apipkg "github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkRequestToReady is POST /api/v1/stores → the store's event stream says
// ready, through gitops-api, the fleet repository, the shard publisher, Flux and
// helm-controller. The baseline in the same run is the same request → the
// HelmRelease Ready at its generation as the cluster itself shows it (polled every
// 20 ms): the difference is what status adds. Stores are created one after another,
// first with no other store in the fleet, then with 1,000 and 10,000 more (retained
// stores: namespace, RBAC and policies, ~7 objects each, all applied by Flux). The
// 10,000 step is slow to seed (Flux creates ~63,000 objects: over 30 minutes on 2
// cores); STOREFLEET_BENCH_FLEET_MAX=1000 stops before it. Each size is measured
// right after its import and again once the machine has settled (settle), and each
// row logs the busiest processes while it ran.
func BenchmarkRequestToReady(b *testing.B) {
	settle(b, "the environment's start")
	b.Run("fleet=0", func(b *testing.B) { requestToReady(b, 10) })
	seeded := 0
	for _, n := range []int{1000, 10000} {
		if max, err := strconv.Atoi(os.Getenv("STOREFLEET_BENCH_FLEET_MAX")); err == nil && n > max {
			b.Logf("fleet=%d not run: STOREFLEET_BENCH_FLEET_MAX=%d", n, max)
			return
		}
		t0 := time.Now()
		seedFleet(b, seeded, n)
		b.Logf("%d more stores pushed, published and applied by Flux in %v", n-seeded, time.Since(t0))
		seeded = n
		// Right after the import, while the cluster's own controllers still react to
		// thousands of new namespaces, and again once the machine has settled: the
		// second is the per-commit cost of a fleet that size.
		b.Run(fmt.Sprintf("fleet=%d", n), func(b *testing.B) { requestToReady(b, 10) })
		settle(b, fmt.Sprintf("the import up to %d stores", n))
		b.Run(fmt.Sprintf("fleet=%d/settled", n), func(b *testing.B) { requestToReady(b, 10) })
	}
}

// settle waits until the machine is quiet: less than a quarter of its CPU time busy
// over a 10 s window (every process counts, the benchmark's own gitops-api
// included), for at most 20 minutes. It logs each window, so the report says what
// the cluster was still doing and for how long.
func settle(b *testing.B, after string) {
	const window, quiet, limit = 10 * time.Second, 0.25, 20 * time.Minute
	t0 := time.Now()
	for {
		before := procTimes()
		busy, err := cpuBusy(window)
		if err != nil {
			b.Fatalf("settle: %v", err)
		}
		b.Logf("settling after %s: %.0f%% of the CPU busy over %v (%v so far); busiest: %s", after, busy*100, window,
			time.Since(t0).Round(time.Second), busiest(before, procTimes(), window))
		if busy < quiet {
			return
		}
		if time.Since(t0) > limit {
			b.Logf("settling after %s: still busy after %v; measuring anyway", after, limit)
			return
		}
	}
}

// procTimes maps "comm[pid]" to the process' CPU time in clock ticks (utime+stime).
func procTimes() map[string]uint64 {
	out := map[string]uint64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(fields[11], 10, 64)
		k, _ := strconv.ParseUint(fields[12], 10, 64)
		out[s[open+1:end]+"["+strings.TrimSpace(s[:open])+"]"] = u + k
	}
	return out
}

// busiest names the four processes that used the most CPU between two procTimes, as
// a percentage of one core (USER_HZ is 100 on Linux).
func busiest(before, after map[string]uint64, d time.Duration) string {
	type use struct {
		name string
		pct  float64
	}
	var uses []use
	for name, t := range after {
		if t0, ok := before[name]; ok && t > t0 {
			uses = append(uses, use{name, float64(t-t0) / d.Seconds()})
		}
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].pct > uses[j].pct })
	var parts []string
	for i := 0; i < len(uses) && i < 4; i++ {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", uses[i].name, uses[i].pct))
	}
	return strings.Join(parts, ", ")
}

// cpuBusy is the fraction of all CPUs' time not idle (idle and iowait) over d,
// from /proc/stat.
func cpuBusy(d time.Duration) (float64, error) {
	read := func() (busy, total uint64, err error) {
		data, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, fmt.Errorf("the benchmark reads CPU time from /proc/stat: %w", err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "cpu" {
			return 0, 0, fmt.Errorf("unexpected /proc/stat: %q", line)
		}
		for i, v := range f[1:] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, err
			}
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, total, nil
	}
	b0, t0, err := read()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	b1, t1, err := read()
	if err != nil {
		return 0, err
	}
	if t1 == t0 {
		return 0, nil
	}
	return float64(b1-b0) / float64(t1-t0), nil
}

// seedFleet commits retained stores fleet-<from>…fleet-<to-1> to the fleet in one
// commit, outside gitops-api (as a bulk import would), and waits until gitops-api's
// shard publisher (its background pass) published every shard at that commit and
// each shard's Kustomization applied it.
func seedFleet(b *testing.B, from, to int) {
	startAPI(b)
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL})
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	opts := render.LocalOptions()
	opts.Chart.Name = "storefleet"
	rnd := render.Renderer{Options: opts}
	var changes []gitrepo.Change
	shards := map[string]bool{}
	for i := from; i < to; i++ {
		st := store.Store{Name: fmt.Sprintf("fleet-%05d", i), Engine: store.WooCommerce, Plan: "basic",
			Settings: store.Settings{AdminEmail: "owner@example.com"}}.WithDefaults("")
		files, err := rnd.Render(st, store.StateRetained)
		if err != nil {
			b.Fatal(err)
		}
		dir := store.Dir(st.Cluster, st.Name)
		shards[store.Shard(st.Name)] = true
		c := gitrepo.Change{Store: st.Name, Cluster: st.Cluster, Dir: dir, Action: gitrepo.ActionCreate,
			Actor: "bench", RequestID: "bench-" + st.Name}
		for _, f := range files {
			c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
		}
		changes = append(changes, c)
	}
	var commit string
	for _, r := range repo.SubmitAll(ctx, changes) {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		commit = r.Commit
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	want := "main@sha1:" + commit
	deadline := time.Now().Add(75 * time.Minute)
	for shard := range shards {
		for {
			if time.Now().After(deadline) {
				b.Fatalf("shard %s: not applied at %s after 75 minutes", shard, want)
			}
			ea, err1 := dyn.Resource(kube.ExternalArtifacts).Namespace("flux-system").Get(ctx, "stores-"+shard, metav1.GetOptions{})
			ks, err2 := dyn.Resource(kube.Kustomizations).Namespace("flux-system").Get(ctx, "stores-"+shard, metav1.GetOptions{})
			if err1 == nil && err2 == nil {
				rev, _, _ := unstructured.NestedString(ea.Object, "status", "artifact", "revision")
				applied, _, _ := unstructured.NestedString(ks.Object, "status", "lastAppliedRevision")
				if rev == want && applied == want {
					break
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

var benchSeq int

func requestToReady(b *testing.B, n int) {
	a := startAPI(b)
	n *= b.N
	var viaSSE, inCluster []time.Duration
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	procs, rowStart := procTimes(), time.Now()
	for range n {
		benchSeq++
		name := fmt.Sprintf("bench-%d", benchSeq)
		clusterReady := make(chan time.Duration, 1)
		start := time.Now()
		go func() {
			for time.Since(start) < 5*time.Minute {
				u, err := dyn.Resource(kube.HelmReleases).Namespace("store-"+name).Get(context.Background(), name, metav1.GetOptions{})
				if err == nil {
					r := kube.ToRelease(u)
					if r.Ready != nil && r.Ready.Status == "True" && r.ObservedGeneration == r.Generation {
						clusterReady <- time.Since(start)
						return
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			clusterReady <- -1
		}()
		body, _ := json.Marshal(createBody(name, ""))
		resp, err := http.Post(a.URL+"/api/v1/stores", "application/json", strings.NewReader(string(body)))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("create %s: %v %v", name, err, resp)
		}
		resp.Body.Close()
		s := a.events(b, "/api/v1/stores/"+name+"/events", "")
		got, _, _ := s.phases(b, 5*time.Minute)
		if len(got) == 0 || got[len(got)-1] != store.PhaseReady {
			b.Fatalf("store %s: phases %v", name, got)
		}
		viaSSE = append(viaSSE, time.Since(start))
		if d := <-clusterReady; d > 0 {
			inCluster = append(inCluster, d)
		}
		s.Close()
	}
	p50, p95 := percentile(viaSSE, 0.5), percentile(viaSSE, 0.95)
	base := percentile(inCluster, 0.5)
	b.ReportMetric(p50.Seconds(), "p50-s")
	b.ReportMetric(p95.Seconds(), "p95-s")
	b.ReportMetric(base.Seconds(), "hr-ready-p50-s")
	b.ReportMetric(percentile(inCluster, 0.95).Seconds(), "hr-ready-p95-s")
	if base > 0 {
		b.ReportMetric(float64(p50)/float64(base), "p50/baseline")
	}
	b.Logf("request→ready over SSE: %v; request→HelmRelease Ready in the cluster: %v", viaSSE, inCluster)
	b.Logf("busiest processes during these requests: %s", busiest(procs, procTimes(), time.Since(rowStart)))
}

// BenchmarkWatcher10k tracks 10,000 store HelmReleases created directly in the API
// server (with their 10,000 labelled namespaces; helm-controller is stopped so they
// stay as created). It reports the watcher's memory (Go heap in use after GC, and
// the process' RSS, both with a baseline measured before the objects existed) and the
// latency from a HelmRelease status change (Ready flips) to the matching event on
// GET /api/v1/events, p50/p99, against the same measurement with 100 releases.
func BenchmarkWatcher10k(b *testing.B) {
	ctx := context.Background()
	if err := env.StopComponent("helm-controller"); err != nil {
		b.Fatal(err)
	}
	rc := rest.CopyConfig(env.Config)
	rc.QPS, rc.Burst = 2000, 4000
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	head, err := gitHead()
	if err != nil {
		b.Fatal(err)
	}
	baseHeap, baseRSS := memory()

	makeStores := func(from, to int) {
		var wg sync.WaitGroup
		work := make(chan int)
		var mu sync.Mutex
		var firstErr error
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					if err := createRelease(ctx, dyn, i); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}
			}()
		}
		for i := from; i < to; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
	}

	measure := func(count, samples int) (p50, p99, sync time.Duration, heap, rss uint64) {
		tr := status.New(status.Options{})
		defer tr.Close()
		// The stores were "committed" at head and Flux has applied every shard at it:
		// only the releases vary.
		rev := "main@sha1:" + head
		shards := map[string]bool{}
		for i := range count {
			shards[store.Shard(benchName(i))] = true
		}
		for shard := range shards {
			tr.Published(shard, rev)
			tr.SetShardSource(shard, rev, nil)
			tr.SetShardApply(shard, rev, nil)
		}
		for i := range count {
			tr.Load(benchName(i), status.Desired{State: store.StateActive, Commit: head, Version: "0.1.0", Shard: store.Shard(benchName(i))})
		}
		// The shard Kustomizations of this environment fail (nothing publishes their
		// artifacts here) and would report that on every store; this benchmark is about
		// the releases, so the watcher looks for shard objects in a namespace without any.
		w, err := kube.New(kube.Config{Rest: env.Config, ProbeInterval: 200 * time.Millisecond, FluxNamespace: "bench-no-shards"}, tr)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		w.Start()
		defer w.Stop()
		for w.Check() != nil || !tr.Connected() {
			if time.Since(t0) > 10*time.Minute {
				b.Fatalf("watcher not synced: %v", w.Check())
			}
			time.Sleep(50 * time.Millisecond)
		}
		sync = time.Since(t0)
		heap, rss = memory()
		srv := httptest.NewServer(apipkg.Handler(nil, apipkg.Options{Status: tr, Cluster: w.Check}))
		defer srv.Close()
		a := &gitopsAPI{URL: srv.URL}
		s := a.events(b, "/api/v1/events", "")
		// Ends the stream before srv.Close (deferred above) waits for it.
		defer s.Close()
		// Skip the current state of every store.
		for range count {
			<-s.C
		}
		var lat []time.Duration
		for k := range samples {
			i := (k * 7919) % count
			start := time.Now()
			if err := setReady(ctx, dyn, i, k); err != nil {
				b.Fatal(err)
			}
			want := benchName(i)
			for {
				ev, ok := <-s.C
				if !ok {
					b.Fatal("event stream ended")
				}
				if ev.Type == "status" && strings.Contains(string(ev.Data), `"store":"`+want+`"`) {
					lat = append(lat, time.Since(start))
					break
				}
			}
		}
		return percentile(lat, 0.5), percentile(lat, 0.99), sync, heap, rss
	}

	makeStores(0, 100)
	b50, b99, bsync, bheap, brss := measure(100, 200)
	makeStores(100, 10000)
	p50, p99, sync, heap, rss := measure(10000, 500)

	mb := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(mb(heap-baseHeap), "heap-MB")
	b.ReportMetric(mb(rss), "rss-MB")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(sync.Seconds(), "sync-s")
	if b50 > 0 {
		b.ReportMetric(float64(p99)/float64(b99), "p99/p99@100")
	}
	b.Logf("before: heap %.1f MB rss %.1f MB; 100 releases: heap %.1f MB rss %.1f MB sync %v p50 %v p99 %v; 10000 releases: heap %.1f MB rss %.1f MB sync %v p50 %v p99 %v",
		mb(baseHeap), mb(baseRSS), mb(bheap), mb(brss), bsync, b50, b99, mb(heap), mb(rss), sync, p50, p99)
}

func benchName(i int) string { return "w" + strconv.Itoa(i) }

func createRelease(ctx context.Context, dyn dynamic.Interface, i int) error {
	name := benchName(i)
	labels := map[string]any{"app.kubernetes.io/managed-by": "storefleet"}
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": "store-" + name, "labels": labels},
	}}
	if _, err := dyn.Resource(kube.Namespaces).Create(ctx, ns, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	hr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"name": name, "namespace": "store-" + name, "labels": labels},
		"spec": map[string]any{
			"interval": "10m", "releaseName": name, "serviceAccountName": "storefleet-store",
			"chart": map[string]any{"spec": map[string]any{"chart": "woocommerce", "version": "0.1.0",
				"sourceRef": map[string]any{"kind": "HelmRepository", "name": "storefleet", "namespace": "flux-system"}}},
			"install": map[string]any{"remediation": map[string]any{"retries": int64(3)}},
			// Values like a real store's, so the transform has something to drop.
			"values": map[string]any{"store": map[string]any{"name": name, "domain": name + ".stores.localhost",
				"title": strings.Repeat("A store title ", 20), "adminEmail": "owner@example.com"}},
		},
	}}
	_, err := dyn.Resource(kube.HelmReleases).Namespace("store-"+name).Create(ctx, hr, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	return nil
}

// setReady flips the release's Ready condition (True on even k, False on odd),
// as helm-controller would, with a message never used before: a release patched in
// an earlier measurement must still change.
func setReady(ctx context.Context, dyn dynamic.Interface, i, k int) error {
	st, reason := "True", "InstallSucceeded"
	if k%2 == 1 {
		st, reason = "False", "InstallFailed"
	}
	patch := fmt.Sprintf(`{"status":{"observedGeneration":1,"installFailures":%d,"conditions":[{"type":"Ready","status":%q,"reason":%q,"message":"bench %d","lastTransitionTime":%q}]}}`,
		k%2*9, st, reason, time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339))
	_, err := dyn.Resource(kube.HelmReleases).Namespace("store-"+benchName(i)).Patch(ctx, benchName(i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	return err
}

// memory is the Go heap in use after a full GC, and the process' resident set.
func memory() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return ms.HeapInuse, rss
}

func gitHead() (string, error) {
	return testenv.Git(context.Background(), env.FleetRepoPath, "rev-parse", "main")
}
