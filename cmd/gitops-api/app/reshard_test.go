package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

type nopSink struct{}

func (nopSink) SetConnected(bool)                                {}
func (nopSink) SetShardSource(string, string, *status.Condition) {}
func (nopSink) SetShardApply(string, string, *status.Condition)  {}
func (nopSink) SetRelease(string, *status.Release)               {}
func (nopSink) SetNamespace(string, bool)                        {}
func (nopSink) KubeEvent(string, status.KubeEvent)               {}

// storeNamed finds a store name whose 4,096 shard satisfies want.
func storeNamed(prefix string, want func(shard string) bool) string {
	for i := 0; ; i++ {
		if n := fmt.Sprintf("%s-%d", prefix, i); want(store.Shard(n)) {
			return n
		}
	}
}

// reshardStoreFiles is a store folder in the shape render produces, with a chart
// from the environment's HelmRepository: a Namespace Flux does not prune, the
// ServiceAccount helm-controller impersonates, and the HelmRelease.
func reshardStoreFiles(name string) map[string]string {
	ns := "store-" + name
	return map[string]string{
		"namespace.yaml": fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    app.kubernetes.io/managed-by: storefleet
  annotations:
    kustomize.toolkit.fluxcd.io/prune: disabled
`, ns),
		"rbac.yaml": fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: storefleet-store
  namespace: %[1]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: storefleet-store
  namespace: %[1]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: admin
subjects:
  - kind: ServiceAccount
    name: storefleet-store
    namespace: %[1]s
`, ns),
		"helmrelease.yaml": fmt.Sprintf(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  releaseName: %[1]s
  serviceAccountName: storefleet-store
  interval: 10m
  timeout: 2m
  chart:
    spec:
      chart: fixture
      version: "0.1.0"
      sourceRef:
        kind: HelmRepository
        name: storefleet
        namespace: flux-system
  install:
    disableWait: true
    disableWaitForJobs: true
  upgrade:
    disableWait: true
    disableWaitForJobs: true
  values:
    message: store %[1]s
`, name, ns),
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n  - rbac.yaml\n  - helmrelease.yaml\n",
	}
}

// installed is what must survive the move: the HelmRelease's UID, the UID of the
// Helm release's first revision (its Secret: an uninstall deletes it, a reinstall
// makes a new one) and the Namespace's UID.
type installed struct{ release, helmV1, namespace types.UID }

// readyRelease waits until store name's HelmRelease is Ready and returns it.
func readyRelease(t *testing.T, ctx context.Context, env *testenv.Env, name string) *helmv2.HelmRelease {
	t.Helper()
	key := client.ObjectKey{Namespace: "store-" + name, Name: name}
	hr := &helmv2.HelmRelease{}
	if err := testenv.Poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		if err := env.Client.Get(ctx, key, hr); err != nil {
			return false, err.Error(), client.IgnoreNotFound(err)
		}
		for _, c := range hr.Status.Conditions {
			if c.Type == "Ready" {
				return c.Status == metav1.ConditionTrue, c.Message, nil
			}
		}
		return false, "no Ready condition", nil
	}); err != nil {
		t.Fatalf("HelmRelease %s: %v", key, err)
	}
	return hr
}

// installedState is what must survive a move of store name, once it is Ready: the
// UIDs of its HelmRelease, its Helm release's first revision and its Namespace.
func installedState(t *testing.T, ctx context.Context, env *testenv.Env, name string) installed {
	t.Helper()
	hr := readyRelease(t, ctx, env, name)
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "store-" + name}, ns); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "store-" + name, Name: "sh.helm.release.v1." + name + ".v1"}, sec); err != nil {
		t.Fatalf("store %s: Helm release revision 1: %v", name, err)
	}
	return installed{release: hr.UID, helmV1: sec.UID, namespace: ns.UID}
}

// TestReshardKeepsEveryStore installs stores at 4,096 shards through the real shard
// publisher, kube-apiserver and Flux controllers, runs `gitops-api reshard --shards
// 256`, and checks that Flux adopted every store instead of uninstalling it: each
// HelmRelease and Helm release keeps its UID (no uninstall, so its revision does not
// restart at 1), each Namespace and the data put in it stays, the shard
// Kustomizations and ExternalArtifacts of the old layout are gone, and a store
// written afterwards at the new layout is installed. The stores are picked so that
// the move takes every wave (a store that stays in 000, one from 001–00f, one from
// 010–0ff, two from 100–fff).
func TestReshardKeepsEveryStore(t *testing.T) {
	// The fixture chart installs with nothing to wait for (no kubelet here).
	env := testenv.StartT(t, testenv.Options{ChartsDir: filepath.Join("..", "..", "..", "internal", "testenv", "testdata", "charts")})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	names := []string{
		storeNamed("stay", func(s string) bool { return s == "000" }),
		storeNamed("near", func(s string) bool { return s > "000" && s < "010" }),
		storeNamed("mid", func(s string) bool { return s >= "010" && s < "100" }),
		storeNamed("far", func(s string) bool { return s >= "100" }),
		storeNamed("far2", func(s string) bool { return s >= "800" }),
	}
	work := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		out, err := testenv.Git(ctx, work, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	git("clone", "--quiet", env.FleetURL, ".")
	write := func(dir string, files map[string]string) {
		t.Helper()
		for f, c := range files {
			p := filepath.Join(work, filepath.FromSlash(dir), f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range names {
		write(store.Dir(testenv.FleetCluster, n), reshardStoreFiles(n))
	}
	git("add", "--all")
	git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet", "-m", "five stores at 4,096 shards")
	git("push", "--quiet", "origin", "HEAD:main")

	// gitops-api's shard publisher, as serve wires it: the real fleet clone, the real
	// watcher's PublishArtifact and WaitApplied, its tarballs served on loopback.
	startShardPublisher(t, ctx, env, time.Second)

	ready := func(name string) *helmv2.HelmRelease { t.Helper(); return readyRelease(t, ctx, env, name) }
	state := func(name string) installed { t.Helper(); return installedState(t, ctx, env, name) }
	before := map[string]installed{}
	for _, n := range names {
		before[n] = state(n)
		// Data in the store's namespace that Git does not hold: it must stay.
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "store-" + n, Name: "data"}, Data: map[string]string{"orders": "42"}}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}

	var stdout, stderr bytes.Buffer
	if err := Run(ctx, []string{"reshard", "--repo", env.FleetURL, "--shards", "256", "--kubeconfig", env.Kubeconfig,
		"--actor", "operator@example.com", "--timeout", "5m"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("reshard: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("reshard: %s", stdout.String())

	// The command returned once every changed shard applied the move: each store's
	// HelmRelease must be the one installed before, not gone (pruned by the shard it
	// left, and then not recreated while helm-controller's uninstall finalizer held it)
	// nor a new one.
	for _, n := range names {
		hr := &helmv2.HelmRelease{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "store-" + n, Name: n}, hr); err != nil || hr.UID != before[n].release {
			t.Fatalf("store %s: the move deleted its HelmRelease (UID before %s, now %q: %v)", n, before[n].release, hr.UID, err)
		}
	}
	for _, n := range names {
		if got := state(n); got != before[n] {
			t.Errorf("store %s: before the move %+v, after %+v: uninstalled or recreated", n, before[n], got)
		}
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "store-" + n, Name: "data"}, cm); err != nil || cm.Data["orders"] != "42" {
			t.Errorf("store %s: its data after the move: %v %v", n, cm.Data, err)
		}
		hr := ready(n)
		if got, want := hr.Labels["kustomize.toolkit.fluxcd.io/name"], store.ShardObjectName(store.ShardIn(n, 256)); got != want {
			t.Errorf("HelmRelease %s is owned by %s, want %s", n, got, want)
		}
	}

	// Only the new layout's shard objects are left.
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[store.ShardObjectName(store.ShardIn(n, 256))] = true
	}
	for kind, res := range map[string]dynamic.ResourceInterface{
		"Kustomization":    dyn.Resource(kube.Kustomizations).Namespace("flux-system"),
		"ExternalArtifact": dyn.Resource(kube.ExternalArtifacts).Namespace("flux-system"),
	} {
		list, err := res.List(ctx, metav1.ListOptions{LabelSelector: store.ShardLabel})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, o := range list.Items {
			got[o.GetName()] = true
			if s, _ := store.ShardOfObject(o.GetName()); !store.ShardInRange(s, 256) {
				t.Errorf("%s %s of the 4,096 layout is still there", kind, o.GetName())
			}
		}
		for n := range want {
			if !got[n] {
				t.Errorf("%s %s of the new layout is missing; have %v", kind, n, got)
			}
		}
	}

	// The fleet: one commit naming the action and actor, the count, every store at
	// its new folder.
	git("pull", "--quiet", "--ff-only", "origin", "main")
	msg := git("log", "-1", "--format=%B")
	for _, line := range []string{"Action: reshard", "Actor: operator@example.com", "Shards: 256"} {
		if !strings.Contains(msg, line) {
			t.Errorf("the reshard commit lacks %q:\n%s", line, msg)
		}
	}
	if data, err := os.ReadFile(filepath.Join(work, store.ShardsFile)); err != nil || strings.TrimSpace(string(data)) != "256" {
		t.Errorf("%s = %q, %v", store.ShardsFile, data, err)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(store.DirIn(testenv.FleetCluster, n, 256)))); err != nil {
			t.Errorf("store %s not at its 256 folder: %v", n, err)
		}
	}

	// A store written afterwards at the new layout is published and installed by its
	// new shard; nothing brings back a shard object of the old layout.
	late := storeNamed("late", func(s string) bool { return s >= "100" })
	write(store.DirIn(testenv.FleetCluster, late, 256), reshardStoreFiles(late))
	git("add", "--all")
	git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet", "-m", "a store after the move")
	git("push", "--quiet", "origin", "HEAD:main")
	hr := ready(late)
	if got, want := hr.Labels["kustomize.toolkit.fluxcd.io/name"], store.ShardObjectName(store.ShardIn(late, 256)); got != want {
		t.Errorf("the late store is applied by %s, want %s", got, want)
	}
	old := store.ShardObjectName(store.Shard(late))
	if _, err := dyn.Resource(kube.Kustomizations).Namespace("flux-system").Get(ctx, old, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Kustomization %s of the old layout: %v, want not found", old, err)
	}
}

// A shard count that is not a power of two from 16 to 4,096, or no repository, is a
// usage mistake (exit code 2) naming the flag, before anything is cloned.
func TestReshardRefusesBadCounts(t *testing.T) {
	for _, args := range [][]string{
		{"reshard", "--repo", "unused", "--shards", "300"},
		{"reshard", "--repo", "unused", "--shards", "8192"},
		{"reshard", "--shards", "256"},
	} {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), args, nil, &stdout, &stderr)
		if ExitCode(err) != 2 || !strings.Contains(stderr.String(), "--") {
			t.Errorf("%v: exit %d, stderr %q", args, ExitCode(err), stderr.String())
		}
	}
}

// cloneAndWatcher are what a shard publisher reads and writes through, as serve
// wires them: its own clone of the environment's fleet and a watcher of the cluster
// with the default shard layout. The clone is closed when the test ends.
func cloneAndWatcher(tb testing.TB, ctx context.Context, env *testenv.Env) (*gitrepo.Repo, *kube.Watcher) {
	tb.Helper()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: filepath.Join(tb.TempDir(), "clone.git")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { repo.Close() })
	w, err := kube.New(kube.Config{Rest: env.Config, FluxNamespace: "flux-system", ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
		return render.ShardKustomization(render.DefaultShardLayout(), shard)
	}}, nopSink{})
	if err != nil {
		tb.Fatal(err)
	}
	return repo, w
}

// startShardPublisher runs gitops-api's shard publisher as serve wires it, until
// the test ends: the environment's fleet cloned, the real watcher's
// PublishArtifact and WaitApplied, its tarballs served on loopback.
func startShardPublisher(tb testing.TB, ctx context.Context, env *testenv.Env, interval time.Duration) (*gitrepo.Repo, *publish.Publisher) {
	tb.Helper()
	repo, w := cloneAndWatcher(tb, ctx, env)
	var handler http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { handler.ServeHTTP(rw, r) }))
	tb.Cleanup(srv.Close)
	pub, err := publish.New(publish.Config{Source: repo, Cluster: w, FleetCluster: testenv.FleetCluster, Dir: tb.TempDir(),
		URL: srv.URL, Interval: interval, Applied: w.WaitApplied})
	if err != nil {
		tb.Fatal(err)
	}
	handler = pub.Handler()
	if err := pub.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pub.Stop)
	return repo, pub
}
