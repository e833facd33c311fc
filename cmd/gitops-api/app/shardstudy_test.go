package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"

	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// studyInt reads a positive integer setting of the shard study from the environment.
func studyInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive integer", name, v)
	}
	return n
}

// cpuSeconds is a process's user+system CPU time so far (/proc/<pid>/stat), and
// rssMiB its peak resident memory (VmHWM).
func cpuSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command (which may hold blanks) start after its ")".
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func rssMiB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkShardStudy is one row of the shard-count study (`make study-shards-N`,
// docs/benchmarks.md): on the real control plane with gitops-api's shard publisher,
// a fleet of STUDY_STORES stores at STUDY_SHARDS shards is imported in one commit,
// then it measures a store's request → ready (push, publish of its shard, until its
// HelmRelease is Ready) settled and during a full drift pass (every shard
// Kustomization asked to reconcile at once, which is what the interval does), the
// pass's length, a bulk import of STUDY_IMPORT more stores in one commit, and
// kustomize-controller's CPU seconds and peak memory. Run with -benchtime 1x. Its
// defaults (4,096 shards, 200 stores, an import of 100) keep `make bench` short; the
// study's targets set 10,000 and 1,000.
func BenchmarkShardStudy(b *testing.B) {
	shards := studyInt(b, "STUDY_SHARDS", store.DefaultShards)
	if err := store.ValidShards(shards); err != nil {
		b.Fatal(err)
	}
	stores, imports, probes := studyInt(b, "STUDY_STORES", 200), studyInt(b, "STUDY_IMPORT", 100), studyInt(b, "STUDY_PROBES", 10)
	var installAll bool
	switch v := os.Getenv("STUDY_INSTALL"); v {
	case "", "probes":
	case "all":
		installAll = true
	default:
		b.Fatalf("STUDY_INSTALL=%q: want probes (the default) or all", v)
	}
	for range b.N {
		studyRow(b, shards, stores, imports, probes, installAll)
	}
}

// studyRow runs one row. Unless installAll, the seeded and bulk-imported stores'
// HelmReleases are suspended: kustomize-controller applies them exactly as it
// would installed ones (the shard Kustomizations do not wait for health), but
// helm-controller leaves them alone. Installing 10,000 releases takes hours on a
// small machine and costs the same at any shard count (one HelmRelease per store),
// while what the count changes — how many Kustomizations there are and how much
// each applies — is all kustomize-controller's. The probes are always installed,
// so request → ready still includes Helm.
func studyRow(b *testing.B, shards, stores, imports, probes int, installAll bool) {
	env := testenv.StartT(b, testenv.Options{ChartsDir: filepath.Join("..", "..", "..", "internal", "testenv", "testdata", "charts")})
	ctx, cancel := context.WithTimeout(context.Background(), 140*time.Minute)
	defer cancel()
	kc := env.PIDs()["kustomize-controller"]
	if kc == 0 {
		b.Fatalf("no kustomize-controller among %v", env.PIDs())
	}
	work := b.TempDir()
	git := func(args ...string) string {
		out, err := testenv.Git(ctx, work, args...)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	git("clone", "--quiet", env.FleetURL, ".")
	commit := func(msg string, names []string, suspend bool) {
		for _, n := range names {
			for f, c := range reshardStoreFiles(n) {
				if suspend && f == "helmrelease.yaml" {
					c = strings.Replace(c, "\nspec:\n", "\nspec:\n  suspend: true\n", 1)
				}
				p := filepath.Join(work, filepath.FromSlash(store.DirIn(testenv.FleetCluster, n, shards)), f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(work, store.ShardsFile), store.FormatShards(shards), 0o644); err != nil {
			b.Fatal(err)
		}
		git("add", "--all")
		git("-c", "user.name=study", "-c", "user.email=study@localhost", "commit", "--quiet", "-m", msg)
		git("push", "--quiet", "origin", "HEAD:main")
	}
	batch := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i)
		}
		return out
	}

	repo, pub := startShardPublisher(b, ctx, env, 2*time.Second)

	// applied waits until n HelmReleases whose names begin with prefix exist: a
	// shard's objects are applied in one server-side apply, so the HelmRelease
	// stands for its store's objects. Metadata only, since the list can be
	// 10,000 long.
	applied := func(prefix string, n int) {
		if err := testenv.Poll(ctx, 2*time.Second, func() (bool, string, error) {
			var list metav1.PartialObjectMetadataList
			list.SetGroupVersionKind(helmv2.GroupVersion.WithKind("HelmReleaseList"))
			if err := env.Client.List(ctx, &list); err != nil {
				return false, "", err
			}
			have := 0
			for _, hr := range list.Items {
				if strings.HasPrefix(hr.Name, prefix+"-") {
					have++
				}
			}
			return have >= n, fmt.Sprintf("%d of %d %s stores applied", have, n, prefix), nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	// allReady waits until n HelmReleases whose names begin with prefix are Ready.
	allReady := func(prefix string, n int) {
		if err := testenv.Poll(ctx, time.Second, func() (bool, string, error) {
			var list helmv2.HelmReleaseList
			if err := env.Client.List(ctx, &list); err != nil {
				return false, "", err
			}
			ready := 0
			for _, hr := range list.Items {
				if !strings.HasPrefix(hr.Name, prefix+"-") {
					continue
				}
				for _, c := range hr.Status.Conditions {
					if c.Type == "Ready" && c.Status == "True" {
						ready++
					}
				}
			}
			return ready >= n, fmt.Sprintf("%d of %d %s stores ready", ready, n, prefix), nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	settle := func(prefix string, n int) {
		if installAll {
			allReady(prefix, n)
		} else {
			applied(prefix, n)
		}
	}
	// requestToReady pushes one store, publishes its shard as the API's queue does
	// right after the push, and times until its HelmRelease is Ready.
	requestToReady := func(name string) time.Duration {
		t0 := time.Now()
		commit("one store", []string{name}, false)
		if err := repo.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := pub.Publish(ctx, store.ShardIn(name, shards)); err != nil {
			b.Fatal(err)
		}
		if _, err := env.WaitReady(ctx, schema.GroupVersionKind{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease"},
			client.ObjectKey{Namespace: "store-" + name, Name: name}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}

	cpu0, t0 := cpuSeconds(b, kc), time.Now()
	commit("seed", batch("seed", stores), !installAll)
	settle("seed", stores)
	seed, seedCPU := time.Since(t0), cpuSeconds(b, kc)-cpu0

	var settled []time.Duration
	for i := range probes {
		settled = append(settled, requestToReady(fmt.Sprintf("settled-%d", i)))
	}

	// A full drift pass: every shard Kustomization reconciles at once.
	var ks kustomizev1.KustomizationList
	if err := env.Client.List(ctx, &ks, client.InNamespace("flux-system"), client.HasLabels{store.ShardLabel}); err != nil {
		b.Fatal(err)
	}
	cpu1, p0 := cpuSeconds(b, kc), time.Now()
	tokens := map[string]string{}
	for _, k := range ks.Items {
		tok, err := env.RequestReconcile(ctx, kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind), client.ObjectKeyFromObject(&k))
		if err != nil {
			b.Fatal(err)
		}
		tokens[k.Name] = tok
	}
	passDone := make(chan time.Duration, 1)
	go func() {
		_ = testenv.Poll(ctx, time.Second, func() (bool, string, error) {
			var now kustomizev1.KustomizationList
			if err := env.Client.List(ctx, &now, client.InNamespace("flux-system"), client.HasLabels{store.ShardLabel}); err != nil {
				return false, "", err
			}
			left := 0
			for _, k := range now.Items {
				if tok, ok := tokens[k.Name]; ok && k.Status.LastHandledReconcileAt != tok {
					left++
				}
			}
			return left == 0, fmt.Sprintf("%d shards left in the pass", left), nil
		})
		passDone <- time.Since(p0)
	}()
	var during []time.Duration
	for i := 0; i < probes; i++ {
		select {
		case d := <-passDone:
			passDone <- d
			i = probes
			continue
		default:
		}
		during = append(during, requestToReady(fmt.Sprintf("drift-%d", i)))
	}
	pass := <-passDone
	passCPU := cpuSeconds(b, kc) - cpu1

	cpu2, i0 := cpuSeconds(b, kc), time.Now()
	commit("bulk import", batch("import", imports), !installAll)
	settle("import", imports)
	imp, impCPU := time.Since(i0), cpuSeconds(b, kc)-cpu2

	b.ReportMetric(seed.Seconds(), "seed-s")
	b.ReportMetric(quantile(settled, 0.5).Seconds(), "ready-p50-s")
	b.ReportMetric(quantile(settled, 0.95).Seconds(), "ready-p95-s")
	if len(during) > 0 {
		b.ReportMetric(quantile(during, 0.5).Seconds(), "drift-ready-p50-s")
		b.ReportMetric(quantile(during, 0.95).Seconds(), "drift-ready-p95-s")
	}
	b.ReportMetric(pass.Seconds(), "drift-pass-s")
	b.ReportMetric(imp.Seconds(), "import-s")
	b.ReportMetric(rssMiB(b, kc), "kc-peak-MiB")
	// | seed and import | shards | stores | shard Kustomizations | seed import s (kc CPU-s) | settled p50 / p95 s |
	// during drift p50 / p95 s | drift pass s (kc CPU-s) | bulk import s (kc CPU-s) | kc peak MiB |
	mode := "installed"
	if !installAll {
		mode = "applied"
	}
	fmt.Printf("STUDY-ROW | %s | %d | %d | %d | %.1f (%.0f) | %.2f / %.2f | %s | %.1f (%.0f) | %.1f (%.0f) | %.0f |\n",
		mode, shards, stores, len(ks.Items), seed.Seconds(), seedCPU, quantile(settled, 0.5).Seconds(), quantile(settled, 0.95).Seconds(),
		driftCell(during), pass.Seconds(), passCPU, imp.Seconds(), impCPU, rssMiB(b, kc))
}

func driftCell(d []time.Duration) string {
	if len(d) == 0 {
		return "pass ended first"
	}
	return fmt.Sprintf("%.2f / %.2f (n=%d)", quantile(d, 0.5).Seconds(), quantile(d, 0.95).Seconds(), len(d))
}
