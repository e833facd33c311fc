package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/scalebench"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// BenchmarkScaleAPIServer is docs/scale.md's "API server objects" and "watcher
// memory" limits: every object render produces for a store (Namespace,
// ServiceAccount, RoleBinding, ResourceQuota, LimitRange, three NetworkPolicies and
// the HelmRelease, with spec.suspend set) is created directly through the test
// environment's kube-apiserver, not through Flux, for 2,500, then 5,000, then
// 10,000 stores (helm-controller stopped, so nothing installs a chart: the chart's
// own objects and Helm's release Secret are not in these figures). At each size,
// once etcd's key count has settled (kube-controller-manager adds a default
// ServiceAccount and the kube-root-ca.crt ConfigMap to every namespace), it records
// kube-apiserver's and etcd's RSS (median of 5 reads a second apart), etcd's DB
// size (total and in use, from etcd's own metrics) and key count; then it starts
// gitops-api's watcher (internal/kube's informers feeding a status.Tracker loaded
// with every store) in this process and records the Go heap it adds once synced
// and how long the sync took. Size 0 (the environment as started) is the baseline
// of the same run. Each figure is fitted to a line over 2,500–10,000 and
// extrapolated to 50,000 and 100,000 stores (logged). `make bench-scale-apiserver`.
func BenchmarkScaleAPIServer(b *testing.B) {
	ctx := context.Background()
	if err := env.StopComponent("helm-controller"); err != nil {
		b.Fatal(err)
	}
	rc := rest.CopyConfig(env.Config)
	rc.QPS, rc.Burst = 2000, 4000
	c, err := client.New(rc, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	etcdURL, err := etcdURLOf(env.PIDs()["kube-apiserver"])
	if err != nil {
		b.Fatal(err)
	}
	head, err := gitHead()
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{0, 2500, 5000, 10000}
	names := []string{"kube-apiserver RSS (MiB)", "etcd RSS (MiB)", "etcd DB total (MiB)", "etcd DB in use (MiB)",
		"etcd keys", "watcher heap (MiB)", "watcher sync (s)", "objects created per store"}
	rows := make([][]float64, len(names))
	created := 0
	for k, n := range sizes {
		t0 := time.Now()
		objs, err := createStoreObjects(ctx, c, created, n)
		if err != nil {
			b.Fatal(err)
		}
		if n > created {
			b.Logf("stores %d..%d: %d objects created in %v", created, n-1, objs, time.Since(t0).Round(time.Second))
		}
		perStore := 0.0
		if n > created {
			perStore = float64(objs) / float64(n-created)
		}
		created = n
		keys, err := settleKeys(ctx, etcdURL)
		if err != nil {
			b.Fatal(err)
		}
		apiRSS, etcdRSS := medianRSS(env.PIDs()["kube-apiserver"]), medianRSS(env.PIDs()["etcd"])
		m, err := etcdMetrics(ctx, etcdURL)
		if err != nil {
			b.Fatal(err)
		}
		heap, sync := watcherAt(b, n, head)
		mib := func(v float64) float64 { return v / (1 << 20) }
		vals := []float64{mib(apiRSS), mib(etcdRSS), mib(m["etcd_mvcc_db_total_size_in_bytes"]),
			mib(m["etcd_mvcc_db_total_size_in_use_in_bytes"]), keys, mib(heap), sync.Seconds(), perStore}
		for i, v := range vals {
			rows[i] = append(rows[i], v)
		}
		b.Logf("stores=%d: %s", n, strings.Join(func() []string {
			var s []string
			for i, v := range vals {
				s = append(s, fmt.Sprintf("%s %.4g", names[i], v))
			}
			return s
		}(), ", "))
		if k == len(sizes)-1 {
			b.ReportMetric(vals[0], "apiserver-MiB")
			b.ReportMetric(vals[1], "etcd-MiB")
			b.ReportMetric(vals[3], "etcd-db-inuse-MiB")
			b.ReportMetric(vals[5], "watcher-heap-MiB")
		}
	}
	xs := []float64{2500, 5000, 10000}
	for i, name := range names[:len(names)-1] {
		f, err := scalebench.Linear(xs, rows[i][1:])
		if err != nil {
			b.Fatal(err)
		}
		// The slope is the cost per store; the baseline at 0 is what the environment
		// holds with no store.
		b.Logf("%s: at 0 (baseline) %.4g, 2500/5000/10000 %.4g; per store %.4g; fit %s", name, rows[i][0], rows[i][1:], f.Slope, f)
	}
}

// createStoreObjects creates stores from..to-1 ("sc-NNNNN", basic WooCommerce) as
// render lays them out, from 16 clients; it returns how many objects it created.
func createStoreObjects(ctx context.Context, c client.Client, from, to int) (int, error) {
	r := render.Renderer{Options: render.LocalOptions()}
	work := make(chan int)
	var mu sync.Mutex
	var firstErr error
	count := 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				n, err := createOneStore(ctx, c, r, fmt.Sprintf("sc-%05d", i))
				mu.Lock()
				count += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	return count, firstErr
}

// createOneStore renders one store and creates its objects, the Namespace first.
func createOneStore(ctx context.Context, c client.Client, r render.Renderer, name string) (int, error) {
	s := store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "a@example.com"}}.WithDefaults("")
	files, err := r.Render(s, store.StateActive)
	if err != nil {
		return 0, err
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f.Path) == "kustomization.yaml" {
			continue // kustomize's build file, not an object
		}
		d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(f.Content), 4096)
		for {
			var m map[string]any
			if err := d.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return 0, fmt.Errorf("%s: %w", f.Path, err)
			}
			if m == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetKind() == "HelmRelease" {
				// No controller may act on it: these figures are the objects at rest.
				if err := unstructured.SetNestedField(u.Object, true, "spec", "suspend"); err != nil {
					return 0, err
				}
			}
			objs = append(objs, u)
		}
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].GetKind() == "Namespace" && objs[j].GetKind() != "Namespace" })
	n := 0
	for _, u := range objs {
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return n, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		n++
	}
	return n, nil
}

// watcherAt starts gitops-api's watcher over the cluster with a tracker loaded with
// stores 0..n-1 and returns the Go heap it adds once synced and how long the sync took.
func watcherAt(b *testing.B, n int, head string) (heap float64, took time.Duration) {
	base, _ := memory()
	tr := status.New(status.Options{})
	defer tr.Close()
	rev := "main@sha1:" + head
	for i := range n {
		name := fmt.Sprintf("sc-%05d", i)
		tr.Load(name, status.Desired{State: store.StateActive, Commit: head, Version: "0.1.0", Shard: store.Shard(name)})
	}
	for shard := range shardsOf(n) {
		tr.Published(shard, rev)
	}
	w, err := kube.New(kube.Config{Rest: env.Config, ProbeInterval: 200 * time.Millisecond}, tr)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	w.Start()
	defer w.Stop()
	for w.Check() != nil || !tr.Connected() {
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("watcher not synced at %d stores: %v", n, w.Check())
		}
		time.Sleep(50 * time.Millisecond)
	}
	took = time.Since(t0)
	after, _ := memory()
	return float64(after) - float64(base), took
}

func shardsOf(n int) map[string]bool {
	m := map[string]bool{}
	for i := range n {
		m[store.Shard(fmt.Sprintf("sc-%05d", i))] = true
	}
	return m
}

// etcdURLOf reads --etcd-servers from kube-apiserver's command line.
func etcdURLOf(pid int) (string, error) {
	v, err := apiserverFlag(pid, "--etcd-servers=")
	return strings.Split(v, ",")[0], err
}

// etcdMetrics reads etcd's Prometheus metrics without labels (sizes and counters).
func etcdMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	if _, ok := m["etcd_mvcc_db_total_size_in_bytes"]; !ok {
		return nil, fmt.Errorf("etcd %s/metrics has no etcd_mvcc_db_total_size_in_bytes", url)
	}
	return m, sc.Err()
}

// settleKeys waits until etcd's key count is the same twice 5 s apart (the
// controllers have added what they add per namespace) and returns it.
func settleKeys(ctx context.Context, url string) (float64, error) {
	last := -1.0
	for range 120 {
		m, err := etcdMetrics(ctx, url)
		if err != nil {
			return 0, err
		}
		k, ok := m["etcd_debugging_mvcc_keys_total"]
		if !ok {
			return 0, fmt.Errorf("etcd has no etcd_debugging_mvcc_keys_total")
		}
		if k == last {
			return k, nil
		}
		last = k
		time.Sleep(5 * time.Second)
	}
	return 0, fmt.Errorf("etcd's key count still moving after 10 minutes (%v)", last)
}

// medianRSS is the median of five reads of a process' VmRSS, a second apart: a Go
// server's RSS moves with its garbage collector.
func medianRSS(pid int) float64 {
	var v []float64
	for range 5 {
		v = append(v, float64(rssOf(pid)))
		time.Sleep(time.Second)
	}
	sort.Float64s(v)
	return v[2]
}

func rssOf(pid int) uint64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkScaleBurst is docs/scale.md's onboarding burst: STOREFLEET_BENCH_BURST
// stores (make bench-scale-burst: 1,000; unset, as under `make bench`, 200, which the
// test environment's service range holds) created through the API by 20 concurrent
// clients into the
// test environment, after one store of the same version was created and waited for
// (its time is the baseline of the same run: request → Ready with nothing else
// queued). It reports the time from the first request to the last store Ready and,
// per store, request → Ready (from when its own create was sent) at p50 and p95,
// also as ratios to the baseline. `make bench-scale-burst`.
func BenchmarkScaleBurst(b *testing.B) {
	n := envCount("STOREFLEET_BENCH_BURST", 200)
	ctx := context.Background()
	a := startAPI(b)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	create(b, a, "scaleburst-first")
	waitAllReady(b, dyn, []string{"scaleburst-first"}, 10*time.Minute)
	first := time.Since(t0)
	if err := serviceRoom(ctx, dyn, "store-scaleburst-first", n); err != nil {
		b.Fatal(err)
	}

	names := make([]string, n)
	for j := range names {
		names[j] = fmt.Sprintf("scaleburst-%05d", j)
	}
	procs := procTimes()
	start := time.Now()
	sent := createAll(b, a, names)
	answered := time.Since(start)
	readyAt := waitAllReady(b, dyn, names, 140*time.Minute)
	total := time.Since(start)
	var lat []time.Duration
	for name, at := range readyAt {
		lat = append(lat, at.Sub(sent[name]))
	}
	p50, p95 := percentile(lat, 0.5), percentile(lat, 0.95)
	b.ReportMetric(first.Seconds(), "baseline-s")
	b.ReportMetric(answered.Seconds(), "creates-s")
	b.ReportMetric(total.Seconds(), "last-ready-s")
	b.ReportMetric(p50.Seconds(), "ready-p50-s")
	b.ReportMetric(p95.Seconds(), "ready-p95-s")
	b.ReportMetric(p50.Seconds()/first.Seconds(), "p50/baseline")
	b.ReportMetric(float64(n)/total.Seconds(), "stores/s")
	b.Logf("%d stores: answered in %v, last Ready %v after the first request; request → Ready p50 %v p95 %v; one store alone first %v; busiest processes: %s",
		n, answered, total, p50, p95, first, busiest(procs, procTimes(), total))
}

// serviceRoom fails when n more stores like the one in namespace ns cannot all get
// their ClusterIP Services from kube-apiserver's --service-cluster-ip-range: each
// install past that fails with "failed to allocate" and the burst would wait for
// ever (seen: a /24 range stopped a 1,000-store burst at 253 Ready stores).
func serviceRoom(ctx context.Context, dyn dynamic.Interface, ns string, n int) error {
	cidr, err := apiserverFlag(env.PIDs()["kube-apiserver"], "--service-cluster-ip-range=")
	if err != nil {
		return err
	}
	_, ipnet, err := net.ParseCIDR(strings.Split(cidr, ",")[0])
	if err != nil {
		return err
	}
	ones, bits := ipnet.Mask.Size()
	// The network and broadcast addresses are not handed out.
	room := (1 << (bits - ones)) - 2
	list, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	used, perStore := 0, 0
	for _, svc := range list.Items {
		ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP")
		if ip == "" || ip == "None" {
			continue
		}
		used++
		if svc.GetNamespace() == ns {
			perStore++
		}
	}
	if need := n * perStore; used+need > room {
		return fmt.Errorf("a burst of %d stores needs %d more ClusterIPs (%d a store) but --service-cluster-ip-range=%s has %d and %d are taken: the test environment's range must be wider for this burst",
			n, need, perStore, cidr, room, used)
	}
	return nil
}

// apiserverFlag reads a flag's value from kube-apiserver's command line.
func apiserverFlag(pid int, prefix string) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", err
	}
	for _, a := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(a, prefix); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("kube-apiserver (pid %d) has no %s", pid, prefix)
}
