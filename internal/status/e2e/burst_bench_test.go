package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/storefleet/storefleet/internal/kube"
)

// BenchmarkBurstToReady is an onboarding burst: N stores (STOREFLEET_BENCH_BURST,
// default 200) created through the API by 20 concurrent clients, then the time until
// every one of their HelmReleases is Ready at its generation in the cluster (watched:
// waitAllReady). One store of the same engine and version is created and waited for
// first, so the burst measures stores of a version already in use (the first store of
// a new version also waits for the fleet GitRepository, which the publisher asks to
// fetch, to bring its chart source: first-s). The figure of interest is burst-ready-s before and after a change, in the
// same environment; it also reports how many HelmCharts the cluster holds at the end
// (one per store before the shared chart sources, one per version after) and the
// busiest processes while the burst settled.
func BenchmarkBurstToReady(b *testing.B) {
	n := envCount("STOREFLEET_BENCH_BURST", 200)
	a := startAPI(b)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	// No settle: the burst is compared with another run on the same machine, not with a quiet one.
	for i := 0; i < b.N; i++ {
		prefix := fmt.Sprintf("burst%d", i)
		t0 := time.Now()
		create(b, a, prefix+"-first")
		waitAllReady(b, dyn, []string{prefix + "-first"}, 10*time.Minute)
		first := time.Since(t0)

		names := make([]string, n)
		for j := range names {
			names[j] = fmt.Sprintf("%s-%04d", prefix, j)
		}
		procs := procTimes()
		start := time.Now()
		createAll(b, a, names)
		answered := time.Since(start)
		readyAt := waitAllReady(b, dyn, names, 60*time.Minute)
		total := time.Since(start)
		var lat []time.Duration
		for _, at := range readyAt {
			lat = append(lat, at.Sub(start))
		}
		b.ReportMetric(first.Seconds(), "first-s")
		b.ReportMetric(answered.Seconds(), "creates-s")
		b.ReportMetric(total.Seconds(), "burst-ready-s")
		b.ReportMetric(percentile(lat, 0.5).Seconds(), "ready-p50-s")
		b.ReportMetric(float64(n)/total.Seconds(), "stores/s")
		b.ReportMetric(float64(countHelmCharts(b, dyn)), "helmcharts")
		b.Logf("%d stores: answered in %v, all Ready in %v; busiest processes: %s", n, answered, total,
			busiest(procs, procTimes(), total))
	}
}

// envCount is the positive number the environment variable name holds, else def: how
// many stores a benchmark creates.
func envCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// createAll creates names through the API from 20 concurrent clients, as an
// onboarding burst does, and returns when each create was sent.
func createAll(b *testing.B, a *gitopsAPI, names []string) map[string]time.Time {
	var mu sync.Mutex
	sent := make(map[string]time.Time, len(names))
	var wg sync.WaitGroup
	next := make(chan string)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				mu.Lock()
				sent[name] = time.Now()
				mu.Unlock()
				create(b, a, name)
			}
		}()
	}
	for _, name := range names {
		next <- name
	}
	close(next)
	wg.Wait()
	return sent
}

func create(b *testing.B, a *gitopsAPI, name string) {
	body, _ := json.Marshal(createBody(name, "0.1.0"))
	for attempt := 0; ; attempt++ {
		resp, err := http.Post(a.URL+"/api/v1/stores", "application/json", strings.NewReader(string(body)))
		if err == nil && resp.StatusCode == http.StatusAccepted {
			resp.Body.Close()
			return
		}
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable && attempt < 20 {
			// Nothing happened (Retry-After): ask again.
			resp.Body.Close()
			time.Sleep(time.Second)
			continue
		}
		if resp != nil {
			resp.Body.Close()
		}
		b.Errorf("create %s: %v %v", name, err, resp)
		return
	}
}

// waitAllReady watches the store HelmReleases until every one of names is Ready at
// its generation (Ready True and status.observedGeneration = metadata.generation),
// and returns when each was first seen so. It lists once, then watches from the
// list's resourceVersion; a watch that ends (the API server's timeout, 410 Gone)
// lists again. A List a second over every store cost ~10 % of kube-apiserver's CPU
// in the 1,000-store burst; the watch sends only what changed.
func waitAllReady(b *testing.B, dyn dynamic.Interface, names []string, limit time.Duration) map[string]time.Time {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	seen := map[string]time.Time{}
	note := func(u *unstructured.Unstructured, now time.Time) {
		if !want[u.GetName()] {
			return
		}
		if _, ok := seen[u.GetName()]; ok {
			return
		}
		r := kube.ToRelease(u)
		if r.Ready != nil && r.Ready.Status == "True" && r.ObservedGeneration == r.Generation {
			seen[u.GetName()] = now
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	res := dyn.Resource(kube.HelmReleases)
	const selector = "app.kubernetes.io/managed-by=storefleet"
	for len(seen) < len(want) && ctx.Err() == nil {
		list, err := res.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		now := time.Now()
		for i := range list.Items {
			note(&list.Items[i], now)
		}
		if len(seen) == len(want) {
			break
		}
		w, err := res.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break // e.g. 410 Gone: list again
			}
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				note(u, time.Now())
			}
			if len(seen) == len(want) {
				break
			}
		}
		w.Stop()
	}
	if len(seen) < len(want) {
		b.Fatalf("%d of %d stores Ready after %v", len(seen), len(want), limit)
	}
	return seen
}

func countHelmCharts(b *testing.B, dyn dynamic.Interface) int {
	list, err := dyn.Resource(schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmcharts"}).
		List(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return len(list.Items)
}
