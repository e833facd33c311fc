package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// TestTwoClustersOneAPI: one gitops-api serves a fleet spread over two clusters,
// each a control plane of its own with its own Flux. A store in each becomes ready
// in its own cluster, and neither cluster holds the other's namespace or shard
// artifact; a store naming a cluster the API does not serve is refused (422, field
// cluster). With one cluster's kube-apiserver stopped, that cluster's store shows
// unknown and the other's still ready, and /readyz names the cluster that does not
// answer; once it is back its store is ready again.
func TestTwoClustersOneAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// east is the default cluster and holds the fleet repository; west's Flux
	// fetches the same repository (its chart sources, its infrastructure). Both
	// start in parallel.
	seed := fleetSeed(t, root, "east", "west")
	var east, west *testenv.Env
	var wg sync.WaitGroup
	for _, c := range []struct {
		name string
		e    **testenv.Env
	}{{"east", &east}, {"west", &west}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*c.e = startCluster(ctx, t, root, seed, c.name)
		}()
	}
	wg.Wait()
	if east == nil || west == nil {
		t.FailNow()
	}
	// Each environment started on its own fleet repository (it waits for Flux to
	// apply its seed); west now reads east's, which gitops-api writes.
	repo := &unstructured.Unstructured{}
	repo.SetAPIVersion(sourcev1.GroupVersion.String())
	repo.SetKind(sourcev1.GitRepositoryKind)
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "fleet"}, repo); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(repo.Object, east.FleetURL, "spec", "url"); err != nil {
		t.Fatal(err)
	}
	if err := west.Client.Update(ctx, repo); err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	artifacts, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	a, err := launchServe(east, "127.0.0.1:0", dataDir, artifacts, "none", "gitops-api-clusters.log",
		"--cluster", "east", "--cluster-kubeconfig", "west="+west.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.stop(); err != nil {
			t.Logf("gitops-api stopped: %v", err)
		}
	}()

	// A cluster the API does not serve is refused, naming the field and the served ones.
	body := createBody("shop-north", "")
	body["cluster"] = "north"
	var p apiv1.Problem
	if err := json.Unmarshal(a.do(t, http.MethodPost, "/api/v1/stores", body, http.StatusUnprocessableEntity), &p); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(p.Errors, func(e apiv1.FieldError) bool { return e.Field == "cluster" }); i < 0 ||
		p.Errors[i].Rule != "oneOf" || !strings.Contains(p.Errors[i].Detail, "east, west") {
		t.Fatalf("unserved cluster: %+v, want field cluster, rule oneOf, listing east, west", p)
	}

	const inEast, inWest = "shop-east", "shop-west"
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(inEast, ""), http.StatusAccepted) // the default: east
	body = createBody(inWest, "")
	body["cluster"] = "west"
	a.do(t, http.MethodPost, "/api/v1/stores", body, http.StatusAccepted)
	waitPhase(t, a, inEast, "ready", 4*time.Minute)
	waitPhase(t, a, inWest, "ready", 4*time.Minute)

	// Each cluster has its own store's namespace and shard artifact, not the other's.
	for _, c := range []struct {
		e           *testenv.Env
		mine, other string
	}{{east, inEast, inWest}, {west, inWest, inEast}} {
		if !hasNamespace(ctx, t, c.e, "store-"+c.mine) {
			t.Errorf("%s: no namespace store-%s", c.e.Dir, c.mine)
		}
		if hasNamespace(ctx, t, c.e, "store-"+c.other) {
			t.Errorf("%s: holds the other cluster's namespace store-%s", c.e.Dir, c.other)
		}
		arts := shardArtifacts(ctx, t, c.e)
		if !slices.Contains(arts, store.ShardObjectName(store.Shard(c.mine))) {
			t.Errorf("%s: artifacts %v lack its store's shard", c.e.Dir, arts)
		}
		if store.Shard(c.mine) != store.Shard(c.other) && slices.Contains(arts, store.ShardObjectName(store.Shard(c.other))) {
			t.Errorf("%s: artifacts %v hold the other cluster's shard", c.e.Dir, arts)
		}
	}
	if out := string(a.do(t, http.MethodGet, "/readyz", nil, http.StatusOK)); !strings.Contains(out, `"cluster":"connected"`) {
		t.Errorf("/readyz with both clusters up: %s", out)
	}

	// West's API server stops: its store is unknown, east's is still ready.
	if err := west.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, a, inWest, "unknown", 2*time.Minute)
	if v := a.get(t, inWest); v.Status.ClusterConnected {
		t.Errorf("%s with its cluster down: %+v", inWest, v.Status)
	}
	if v := a.get(t, inEast); v.Status.Phase != "ready" || !v.Status.ClusterConnected {
		t.Errorf("%s while the other cluster is down: %+v", inEast, v.Status)
	}
	// The API serves on without a cluster: /readyz is 200 and says which one is lost.
	if out := string(a.do(t, http.MethodGet, "/readyz", nil, http.StatusOK)); !strings.Contains(out, "not connected: cluster west") || strings.Contains(out, "cluster east") {
		t.Errorf("/readyz with west down: %s", out)
	}
	// A change to east's store still goes through to ready.
	a.do(t, http.MethodPatch, "/api/v1/stores/"+inEast, map[string]any{"settings": map[string]any{"title": "East"}}, http.StatusAccepted)
	waitStore(t, a, inEast, 4*time.Minute, func(v storeView) bool { return v.Settings.Title == "East" && v.Status.Phase == "ready" })

	if err := west.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, a, inWest, "ready", 4*time.Minute)
}

// fleetSeed is fleet/ with a stores and a chart-sources folder for each cluster
// (a Kustomization whose path is missing is not Ready).
func fleetSeed(t testing.TB, root string, clusters ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fleet")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "fleet"))); err != nil {
		t.Fatal(err)
	}
	for _, c := range clusters {
		for _, f := range []string{"stores/" + c + "/.gitkeep", "chart-sources/" + c + "/README.md"} {
			p := filepath.Join(dir, filepath.FromSlash(f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("cluster "+c+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// startCluster starts a control plane with Flux whose configuration is
// clusters/local's for cluster name: its chart sources are chart-sources/<name>/.
// Its fleet repository is seeded with seed. It is stopped when the test ends; a
// failure to start is reported and nil returned (it may run in a goroutine).
func startCluster(ctx context.Context, t testing.TB, root, seed, name string) *testenv.Env {
	dir := filepath.Join(t.TempDir(), "clusters", name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "clusters", "local"))); err != nil {
		t.Error(err)
		return nil
	}
	p := filepath.Join(dir, "chart-sources.yaml")
	b, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(b), "./chart-sources/local") {
		t.Errorf("%s: %v, or no path ./chart-sources/local", p, err)
		return nil
	}
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "./chart-sources/local", "./chart-sources/"+name)), 0o644); err != nil {
		t.Error(err)
		return nil
	}
	// Each environment in a folder of its own, kept on failure for its logs.
	envDir, err := os.MkdirTemp("", "storefleet-cluster-"+name+"-")
	if err != nil {
		t.Error(err)
		return nil
	}
	charts, err := testCharts()
	if err != nil {
		t.Error(err)
		return nil
	}
	t.Cleanup(func() { os.RemoveAll(charts) })
	e, err := testenv.Start(ctx, testenv.Options{Dir: envDir, ChartsDir: charts, ClusterDir: dir, FleetSeedDir: seed})
	if err != nil {
		t.Errorf("cluster %s: %v (logs in %s)", name, err, envDir)
		return nil
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			if err := e.Stop(); err != nil {
				t.Errorf("stop cluster %s: %v", name, err)
			}
			if t.Failed() {
				t.Logf("cluster %s: logs in %s", name, e.LogDir)
				return
			}
			_ = os.RemoveAll(envDir)
		})
	})
	return e
}

// waitPhase waits until the store's phase is want, failing with its last status
// after timeout.
func waitPhase(t *testing.T, a *gitopsAPI, name, want string, timeout time.Duration) {
	t.Helper()
	waitStore(t, a, name, timeout, func(v storeView) bool { return v.Status.Phase == want })
}

func waitStore(t *testing.T, a *gitopsAPI, name string, timeout time.Duration, ok func(storeView) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := a.get(t, name)
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %+v after %s", name, v.Status, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func hasNamespace(ctx context.Context, t testing.TB, e *testenv.Env, name string) bool {
	t.Helper()
	err := e.Client.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// shardArtifacts lists the ExternalArtifacts of the cluster's Flux namespace.
func shardArtifacts(ctx context.Context, t *testing.T, e *testenv.Env) []string {
	t.Helper()
	var l unstructured.UnstructuredList
	l.SetAPIVersion(sourcev1.GroupVersion.String())
	l.SetKind(sourcev1.ExternalArtifactKind + "List")
	if err := e.Client.List(ctx, &l, client.InNamespace("flux-system")); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range l.Items {
		out = append(out, o.GetName())
	}
	return out
}
