package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// fluxShardStores picks n store names whose fleet shard is on controller shard key
// of k (render.FluxShards.Key) and not in used, each in a fleet shard of its own,
// and marks their shards used.
func fluxShardStores(t testing.TB, k render.FluxShards, key, prefix string, n int, used map[string]bool) []string {
	t.Helper()
	var names []string
	for i := 0; len(names) < n && i < 10000; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		shard := store.Shard(name)
		if used[shard] || k.Key(shard) != key {
			continue
		}
		used[shard] = true
		names = append(names, name)
	}
	if len(names) < n {
		t.Fatalf("found only %d store names on controller shard %q", len(names), key)
	}
	return names
}

// sharedFixtureChart is a chart source shared by stores, as render's
// (render.SharedChartSource): one HelmChart of the fixture chart in the Flux
// namespace, unlabelled, so source-controller (never sharded) reconciles it for
// the stores of every controller shard.
const sharedFixtureChart = `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata:
  name: fixture-0.1.0
  namespace: flux-system
spec:
  chart: fixture
  version: "0.1.0"
  sourceRef:
    kind: HelmRepository
    name: storefleet
  interval: 10m
`

// writeShardedStore writes a store whose HelmRelease carries its controller shard's
// label, as render does (render.Options.FluxShards). With shared, it refers to
// sharedFixtureChart with spec.chartRef, as render's do; otherwise it names its
// chart itself (spec.chart, one HelmChart per store).
func (w *fleetWork) writeShardedStore(k render.FluxShards, name string, shared bool) {
	w.t.Helper()
	files := storeFiles(name, "0.1.0", true, false)
	if shared {
		chart := `  chart:
    spec:
      chart: fixture
      version: "0.1.0"
      sourceRef:
        kind: HelmRepository
        name: storefleet
        namespace: flux-system
`
		if !strings.Contains(files["helmrelease.yaml"], chart) {
			w.t.Fatalf("storeFiles' HelmRelease changed shape:\n%s", files["helmrelease.yaml"])
		}
		files["helmrelease.yaml"] = strings.Replace(files["helmrelease.yaml"], chart,
			"  chartRef:\n    kind: HelmChart\n    name: fixture-0.1.0\n    namespace: flux-system\n", 1)
	}
	if key := k.Key(store.Shard(name)); key != "" {
		meta := "  namespace: store-" + name + "\nspec:\n"
		if !strings.Contains(files["helmrelease.yaml"], meta) {
			w.t.Fatalf("storeFiles' HelmRelease changed shape:\n%s", files["helmrelease.yaml"])
		}
		files["helmrelease.yaml"] = strings.Replace(files["helmrelease.yaml"], meta,
			"  namespace: store-"+name+"\n  labels:\n    "+render.FluxShardLabel+": "+key+"\nspec:\n", 1)
	}
	w.writeStore(name, files)
}

func readLog(t testing.TB, e *Env, component string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.LogDir, component+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFluxControllerShards runs the environment with two controller shards, as
// clusters/README.md sets a cluster up: stores of both become Ready, each
// kustomize-controller and helm-controller logs only its own shard's objects (the
// main ones the cluster configuration and controller shard 0, the extra ones
// shard1), and with shard 1's controllers stopped a new store of shard 0 still goes
// to Ready while one of shard 1 is not even applied, until they are back.
func TestFluxControllerShards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const k = render.FluxShards(2)
	// A copy of the fixture charts of its own: other tests of the package bump the
	// shared copy's version (seen: 0.1.0 gone from the repository mid-run).
	charts := fixtureCharts()
	t.Cleanup(func() { os.RemoveAll(charts) })
	e := StartT(t, Options{ChartsDir: charts, FluxShards: k})
	for _, c := range []string{"kustomize-controller-shard1", "helm-controller-shard1"} {
		if _, ok := e.PIDs()[c]; !ok {
			t.Fatalf("no %s running: %v", c, e.PIDs())
		}
	}
	used := map[string]bool{}
	main := fluxShardStores(t, k, "", "fsa", 2, used)
	extra := fluxShardStores(t, k, "shard1", "fsb", 2, used)

	// The stores of both controller shards share one chart source, which nobody
	// labels: source-controller, not sharded, serves it to both helm-controllers.
	if err := e.Apply(ctx, []byte(sharedFixtureChart)); err != nil {
		t.Fatal(err)
	}
	w := cloneFleet(t, e)
	for _, n := range append(append([]string(nil), main...), extra...) {
		w.writeShardedStore(k, n, true)
	}
	if _, err := e.Reconcile(ctx, w.push("stores on both controller shards")); err != nil {
		t.Fatal(err)
	}
	for _, n := range append(append([]string(nil), main...), extra...) {
		waitHelmRelease(ctx, t, e, client.ObjectKey{Namespace: "store-" + n, Name: n}, 0)
		ks, err := e.get(ctx, kustomizationGVK, client.ObjectKey{Namespace: fluxNamespace, Name: store.ShardObjectName(store.Shard(n))})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ks.GetLabels()[render.FluxShardLabel], k.Key(store.Shard(n)); got != want {
			t.Errorf("Kustomization %s labelled %s=%q, want %q", ks.GetName(), render.FluxShardLabel, got, want)
		}
	}

	helmCharts := &unstructured.UnstructuredList{}
	helmCharts.SetAPIVersion("source.toolkit.fluxcd.io/v1")
	helmCharts.SetKind("HelmChartList")
	if err := e.Client.List(ctx, helmCharts); err != nil {
		t.Fatal(err)
	}
	if len(helmCharts.Items) != 1 || helmCharts.Items[0].GetName() != "fixture-0.1.0" {
		var names []string
		for _, c := range helmCharts.Items {
			names = append(names, c.GetNamespace()+"/"+c.GetName())
		}
		t.Errorf("HelmCharts %v, want only the shared flux-system/fixture-0.1.0", names)
	}

	// Who did it: a controller logs the objects it reconciles by name; a sharded one
	// never sees the others (its cache holds only its label's).
	logs := map[string]string{}
	for _, c := range []string{"kustomize-controller", "kustomize-controller-shard1", "helm-controller", "helm-controller-shard1"} {
		logs[c] = readLog(t, e, c)
	}
	owns := func(controller string, mine, theirs []string, name func(string) string) {
		t.Helper()
		for _, n := range mine {
			if !strings.Contains(logs[controller], `"`+name(n)+`"`) {
				t.Errorf("%s's log never names %s, which is on its controller shard", controller, name(n))
			}
		}
		for _, n := range theirs {
			if strings.Contains(logs[controller], `"`+name(n)+`"`) {
				t.Errorf("%s's log names %s, which is on the other controller shard", controller, name(n))
			}
		}
	}
	shardKs := func(n string) string { return store.ShardObjectName(store.Shard(n)) }
	release := func(n string) string { return "store-" + n }
	owns("kustomize-controller", main, extra, shardKs)
	owns("kustomize-controller-shard1", extra, main, shardKs)
	owns("helm-controller", main, extra, release)
	owns("helm-controller-shard1", extra, main, release)
	if !strings.Contains(logs["kustomize-controller"], `"infrastructure"`) {
		t.Error("the main kustomize-controller's log never names Kustomization infrastructure (the cluster configuration is unlabelled)")
	}
	if strings.Contains(logs["kustomize-controller-shard1"], `"Kustomization":{"name":"infrastructure"`) {
		t.Error("kustomize-controller-shard1 reconciled Kustomization infrastructure")
	}
	if t.Failed() {
		return
	}

	// Shard 1's controllers stop: a new store of each controller shard, in one commit.
	for _, c := range []string{"kustomize-controller-shard1", "helm-controller-shard1"} {
		if err := e.StopComponent(c); err != nil {
			t.Fatal(err)
		}
	}
	main2 := fluxShardStores(t, k, "", "fsc", 1, used)[0]
	extra2 := fluxShardStores(t, k, "shard1", "fsd", 1, used)[0]
	w.writeShardedStore(k, main2, true)
	w.writeShardedStore(k, extra2, true)
	_, published, err := e.reconcileAndPublish(ctx, w.push("a store on each controller shard, shard 1 stopped"))
	if err != nil {
		t.Fatal(err)
	}
	mainShard, extraShard := store.Shard(main2), store.Shard(extra2)
	if published[mainShard] == "" || published[extraShard] == "" {
		t.Fatalf("published %v, want shards %s and %s", published, mainShard, extraShard)
	}
	if err := e.waitShardsApplied(ctx, map[string]string{mainShard: published[mainShard]}); err != nil {
		t.Fatal(err)
	}
	waitHelmRelease(ctx, t, e, client.ObjectKey{Namespace: "store-" + main2, Name: main2}, 0)
	// Shard 0's store is Ready; shard 1's, published at the same moment, is not even
	// applied: nobody reconciled its (new) Kustomization, so it has no status.
	ks, err := e.get(ctx, kustomizationGVK, client.ObjectKey{Namespace: fluxNamespace, Name: store.ShardObjectName(extraShard)})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(ks.Object, "status", "conditions")
	applied, _, _ := unstructured.NestedString(ks.Object, "status", "lastAppliedRevision")
	if len(conds) > 0 || applied != "" {
		t.Errorf("Kustomization %s (controller shard 1, its controllers stopped) was reconciled: lastAppliedRevision %q, conditions %v",
			ks.GetName(), applied, conds)
	}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: "store-" + extra2, Name: extra2}, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": helmReleaseGVK.GroupVersion().String(), "kind": helmReleaseGVK.Kind}}); !apierrors.IsNotFound(err) {
		t.Errorf("HelmRelease %s/%s exists (err=%v) though controller shard 1 is stopped", "store-"+extra2, extra2, err)
	}

	// Back: shard 1's store catches up.
	for _, c := range []string{"kustomize-controller-shard1", "helm-controller-shard1"} {
		if err := e.RestartComponent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.waitShardsApplied(ctx, published); err != nil {
		t.Fatal(err)
	}
	waitHelmRelease(ctx, t, e, client.ObjectKey{Namespace: "store-" + extra2, Name: extra2}, 0)
	t.Logf("stores %v (controller shard 0) and %v (shard 1) Ready; with shard 1 stopped %s went Ready and %s waited", main, extra, main2, extra2)
}
