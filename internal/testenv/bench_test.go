package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkStart is the warm start of a whole environment (binaries built): etcd,
// kube-apiserver, CRDs, kube-controller-manager, three Flux controllers, Git and
// chart servers, and Flux applying the fleet's first commit; Stop included. The
// apiserver-s and controllers-s metrics are when those phases finished.
func BenchmarkStart(b *testing.B) {
	var apiserver, controllers, stop time.Duration
	for range b.N {
		dir, err := os.MkdirTemp("", "storefleet-testenv-bench-")
		if err != nil {
			b.Fatal(err)
		}
		e, err := Start(context.Background(), Options{Dir: dir, ChartsDir: env.opts.ChartsDir})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range e.Phases {
			switch {
			case strings.HasPrefix(p.Name, "kube-apiserver ready"):
				apiserver += p.After
			case p.Name == "controllers ready":
				controllers += p.After
			}
		}
		t := time.Now()
		if err := e.Stop(); err != nil {
			b.Fatal(err)
		}
		stop += time.Since(t)
		os.RemoveAll(dir)
	}
	n := float64(b.N)
	b.ReportMetric(apiserver.Seconds()/n, "apiserver-s")
	b.ReportMetric(controllers.Seconds()/n, "controllers-s")
	b.ReportMetric(stop.Seconds()/n, "stop-s")
}

// BenchmarkPushToApplied is the baseline for BenchmarkPushToReady: git push of a
// commit that changes no object → GitRepository artifact → Kustomization
// infrastructure applied, with triggered reconciles (no shard changed, so none is
// published or applied).
func BenchmarkPushToApplied(b *testing.B) {
	ctx := context.Background()
	w := cloneFleet(b, env)
	i := 0
	for range b.N {
		i++
		w.write("infrastructure/local/README.md", fmt.Sprintf("bench %d %d\n", i, time.Now().UnixNano()))
		if _, err := env.Reconcile(ctx, w.push("bench")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPushToReady is a store change end to end: git push of a changed
// HelmRelease → artifact → Kustomization applied → helm-controller upgrades →
// HelmRelease Ready at the new generation.
func BenchmarkPushToReady(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	const name = "bench"
	key := client.ObjectKey{Namespace: "store-" + name, Name: name}
	w := cloneFleet(b, env)
	files := storeFiles(name, "0.1.0", true, false)
	w.writeStore(name, files)
	if _, err := env.Reconcile(ctx, w.push("bench store")); err != nil {
		b.Fatal(err)
	}
	gen := waitReadyGen(ctx, b, key, 0)
	i := 0
	for range b.N {
		i++
		files["helmrelease.yaml"] = strings.Replace(storeFiles(name, "0.1.0", true, false)["helmrelease.yaml"],
			"message: store bench", fmt.Sprintf("message: change %d-%d", i, time.Now().UnixNano()), 1)
		w.writeStore(name, files)
		if _, err := env.Reconcile(ctx, w.push("bench change")); err != nil {
			b.Fatal(err)
		}
		gen = waitReadyGen(ctx, b, key, gen)
	}
}

func waitReadyGen(ctx context.Context, b *testing.B, key client.ObjectKey, after int64) int64 {
	var gen int64
	err := Poll(ctx, 20*time.Millisecond, func() (bool, string, error) {
		u, err := env.get(ctx, helmReleaseGVK, key)
		if err != nil {
			return false, err.Error(), nil
		}
		ok, msg := IsReady(u)
		gen = u.GetGeneration()
		return ok && gen > after, msg, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return gen
}
