package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/storefleet/storefleet/internal/kube"
)

// BenchmarkHelmReleasePass is what one periodic reconcile of every installed store
// costs helm-controller and the API server, with the HelmReleases' drift detection
// as render writes it (enabled) and with it off (the baseline of the same run).
// helm-controller reconciles each HelmRelease every spec.interval whether anything
// changed or not; at 10,000 stores that pass never stops, so its cost per store
// bounds the stores one helm-controller can keep. STOREFLEET_BENCH_STORES stores
// (default 100) are created through the API and waited for; then, in alternating
// rounds, every HelmRelease gets the drift mode under test (spec, so one reconcile
// to settle it first) and a reconcile request (reconcile.fluxcd.io/requestedAt, as
// `flux reconcile` and the interval do), timed until every one reports it handled.
// Per pass: its length, helm-controller's and kube-apiserver's CPU seconds and the
// API server's requests, each per store. `make bench-helm-pass`.
func BenchmarkHelmReleasePass(b *testing.B) {
	n := envCount("STOREFLEET_BENCH_STORES", 100)
	ctx := context.Background()
	a := startAPI(b)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for j := range names {
		names[j] = fmt.Sprintf("hrpass-%05d", j)
	}
	create(b, a, names[0])
	waitAllReady(b, dyn, names[:1], 10*time.Minute)
	if err := serviceRoom(ctx, dyn, "store-"+names[0], n-1); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	createAll(b, a, names[1:])
	waitAllReady(b, dyn, names, 140*time.Minute)
	b.Logf("%d stores installed in %v", n, time.Since(t0))

	type pass struct {
		took                 time.Duration
		helmCPU, apiCPU      float64 // CPU seconds
		requests, dryRunPats float64
	}
	results := map[string][]pass{}
	modes := []string{"disabled", "enabled"}
	b.ResetTimer()
	for round := 0; round < 2; round++ {
		for _, mode := range modes {
			setDriftMode(b, dyn, names, mode)
			before, reqs0 := procTimes(), apiRequests(b, cs)
			token := strconv.FormatInt(time.Now().UnixNano(), 10)
			start := time.Now()
			requestReconcile(b, dyn, names, token)
			waitHandled(b, dyn, names, token, 60*time.Minute)
			took := time.Since(start)
			after, reqs1 := procTimes(), apiRequests(b, cs)
			p := pass{
				took:     took,
				helmCPU:  cpuOf(before, after, "helm-controller"),
				apiCPU:   cpuOf(before, after, "kube-apiserver"),
				requests: reqs1.total - reqs0.total,
				// Drift detection is a server-side apply dry run per object.
				dryRunPats: reqs1.patch - reqs0.patch,
			}
			results[mode] = append(results[mode], p)
			b.Logf("round %d, drift detection %s: pass %v for %d stores; helm-controller %.1f CPU-s, kube-apiserver %.1f CPU-s; %.0f API requests (%.0f PATCH); busiest: %s",
				round+1, mode, took.Round(time.Millisecond), n, p.helmCPU, p.apiCPU, p.requests, p.dryRunPats, busiest(before, after, took))
		}
	}
	b.StopTimer()
	// Medians of two rounds are the mean of the two.
	avg := func(ps []pass) pass {
		var s pass
		for _, p := range ps {
			s.took += p.took
			s.helmCPU += p.helmCPU
			s.apiCPU += p.apiCPU
			s.requests += p.requests
			s.dryRunPats += p.dryRunPats
		}
		k := float64(len(ps))
		return pass{took: time.Duration(float64(s.took) / k), helmCPU: s.helmCPU / k, apiCPU: s.apiCPU / k, requests: s.requests / k, dryRunPats: s.dryRunPats / k}
	}
	off, on := avg(results["disabled"]), avg(results["enabled"])
	per := float64(n)
	b.ReportMetric(off.took.Seconds(), "pass-off-s")
	b.ReportMetric(on.took.Seconds(), "pass-on-s")
	b.ReportMetric(on.took.Seconds()/off.took.Seconds(), "pass-on/off")
	b.ReportMetric(1000*on.helmCPU/per, "helm-ms/store-on")
	b.ReportMetric(1000*off.helmCPU/per, "helm-ms/store-off")
	b.ReportMetric(1000*on.apiCPU/per, "apiserver-ms/store-on")
	b.ReportMetric(1000*off.apiCPU/per, "apiserver-ms/store-off")
	b.ReportMetric(on.requests/per, "requests/store-on")
	b.ReportMetric(off.requests/per, "requests/store-off")
}

// setDriftMode gives every HelmRelease spec.driftDetection.mode and waits until
// helm-controller has reconciled the new generation, so the pass that follows
// times only the periodic reconcile. The shard Kustomizations would put render's
// mode back at their next apply; none is due within a benchmark (their interval
// is an hour and nothing is committed meanwhile).
func setDriftMode(b *testing.B, dyn dynamic.Interface, names []string, mode string) {
	patchReleases(b, dyn, names, fmt.Sprintf(`{"spec":{"driftDetection":{"mode":%q}}}`, mode))
	waitAllReady(b, dyn, names, 60*time.Minute)
}

func requestReconcile(b *testing.B, dyn dynamic.Interface, names []string, token string) {
	patchReleases(b, dyn, names, fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, token))
}

// patchReleases merge-patches the HelmRelease of every store of names.
func patchReleases(b *testing.B, dyn dynamic.Interface, names []string, patch string) {
	for _, name := range names {
		if _, err := dyn.Resource(kube.HelmReleases).Namespace("store-"+name).Patch(context.Background(), name,
			types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatalf("patch HelmRelease %s with %s: %v", name, patch, err)
		}
	}
}

// waitHandled waits until every HelmRelease of names reports the reconcile request
// token handled (status.lastHandledReconcileAt), listing them every 2 s.
func waitHandled(b *testing.B, dyn dynamic.Interface, names []string, token string, limit time.Duration) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	deadline := time.Now().Add(limit)
	for {
		list, err := dyn.Resource(kube.HelmReleases).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=storefleet"})
		if err == nil {
			done := 0
			for i := range list.Items {
				u := &list.Items[i]
				if !want[u.GetName()] {
					continue
				}
				if got, _, _ := unstructured.NestedString(u.Object, "status", "lastHandledReconcileAt"); got == token {
					done++
				}
			}
			if done == len(want) {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d HelmReleases handled the reconcile request after %v", done, len(want), limit)
			}
		}
		time.Sleep(2 * time.Second)
	}
}

// cpuOf is the CPU seconds the processes named comm used between two procTimes.
func cpuOf(before, after map[string]uint64, comm string) float64 {
	var ticks uint64
	for name, t := range after {
		if strings.HasPrefix(name, comm+"[") && t > before[name] {
			ticks += t - before[name]
		}
	}
	return float64(ticks) / 100 // USER_HZ
}

type requestCount struct{ total, patch float64 }

// apiRequests sums kube-apiserver's apiserver_request_total, all and PATCH only.
func apiRequests(b *testing.B, cs *kubernetes.Clientset) requestCount {
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("kube-apiserver metrics: %v", err)
	}
	var c requestCount
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		c.total += v
		if strings.Contains(line, `verb="PATCH"`) || strings.Contains(line, `verb="APPLY"`) {
			c.patch += v
		}
	}
	return c
}
