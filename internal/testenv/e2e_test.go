package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/storefleet/storefleet/internal/store"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fleetWork is a clone of the fleet repository that tests commit to and push from
// with the git CLI, as an outside contributor or the fleet writer would.
type fleetWork struct {
	t   testing.TB
	dir string
	e   *Env
}

func cloneFleet(t testing.TB, e *Env) *fleetWork {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fleet")
	if _, err := Git(context.Background(), filepath.Dir(dir), "clone", "-q", e.FleetURL, dir); err != nil {
		t.Fatal(err)
	}
	return &fleetWork{t: t, dir: dir, e: e}
}

func (w *fleetWork) write(rel, content string) {
	w.t.Helper()
	p := filepath.Join(w.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *fleetWork) remove(rel string) {
	w.t.Helper()
	if err := os.RemoveAll(filepath.Join(w.dir, rel)); err != nil {
		w.t.Fatal(err)
	}
}

// push commits everything and pushes main; it returns the commit.
func (w *fleetWork) push(msg string) string {
	w.t.Helper()
	ctx := context.Background()
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}, {"push", "-q", "origin", "main"}} {
		if _, err := Git(ctx, w.dir, args...); err != nil {
			w.t.Fatal(err)
		}
	}
	sha, err := Git(ctx, w.dir, "rev-parse", "HEAD")
	if err != nil {
		w.t.Fatal(err)
	}
	return sha
}

// storeDir is the store's folder per docs/design.md: stores/<cluster>/<shard>/<name>
// (render.StoreDir).
func storeDir(name string) string {
	return filepath.FromSlash(store.Dir(FleetCluster, name))
}

// storeFiles are store-like files in the shape render produces (namespace with
// pruning disabled, the ServiceAccount helm-controller impersonates, quota and
// limits, and the HelmRelease in the store's own namespace). withRelease=false is
// the delete phase; pruneNamespace=true is the first commit of a purge.
func storeFiles(name, chartVersion string, withRelease, pruneNamespace bool) map[string]string {
	ns := "store-" + name
	prune := "\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled"
	if pruneNamespace {
		prune = ""
	}
	files := map[string]string{
		"namespace.yaml": fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    app.kubernetes.io/managed-by: storefleet
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest%s
`, ns, prune),
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
		"policy.yaml": fmt.Sprintf(`apiVersion: v1
kind: ResourceQuota
metadata:
  name: store
  namespace: %[1]s
spec:
  hard:
    requests.cpu: "1"
    requests.memory: 1Gi
    limits.cpu: "2"
    limits.memory: 2Gi
    requests.storage: 10Gi
    persistentvolumeclaims: "4"
    pods: "10"
---
apiVersion: v1
kind: LimitRange
metadata:
  name: store
  namespace: %[1]s
spec:
  limits:
    - type: Container
      default: {cpu: 100m, memory: 128Mi}
      defaultRequest: {cpu: 50m, memory: 64Mi}
`, ns),
	}
	resources := "  - namespace.yaml\n  - rbac.yaml\n  - policy.yaml\n"
	if withRelease {
		files["helmrelease.yaml"] = fmt.Sprintf(`apiVersion: helm.toolkit.fluxcd.io/v2
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
      version: %[3]q
      sourceRef:
        kind: HelmRepository
        name: storefleet
        namespace: flux-system
  # No kubelet runs in the test environment: Helm must not wait for Pods.
  install:
    disableWait: true
    disableWaitForJobs: true
    remediation:
      retries: 3
  upgrade:
    disableWait: true
    disableWaitForJobs: true
    remediation:
      retries: 3
  values:
    message: store %[1]s
`, name, ns, chartVersion)
		resources += "  - helmrelease.yaml\n"
	}
	files["kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + resources
	return files
}

func (w *fleetWork) writeStore(name string, files map[string]string) {
	w.t.Helper()
	dir := storeDir(name)
	w.remove(dir)
	for f, c := range files {
		w.write(filepath.Join(dir, f), c)
	}
}

// waitHelmRelease waits until the HelmRelease is Ready at a generation after
// minGen and returns it.
func waitHelmRelease(ctx context.Context, t *testing.T, e *Env, key client.ObjectKey, minGen int64) *helmv2.HelmRelease {
	t.Helper()
	hr := &helmv2.HelmRelease{}
	err := Poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		if err := e.Client.Get(ctx, key, hr); err != nil {
			return false, err.Error(), nil
		}
		u, err := toUnstructured(hr)
		if err != nil {
			return false, "", err
		}
		ok, msg := IsReady(u)
		return ok && hr.Generation > minGen, fmt.Sprintf("generation %d; %s", hr.Generation, msg), nil
	})
	if err != nil {
		t.Fatalf("HelmRelease %s: %v", key, err)
	}
	return hr
}

func toUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := Scheme.Convert(obj, u, nil); err != nil {
		return nil, err
	}
	return u, nil
}

func waitGone(ctx context.Context, t *testing.T, e *Env, obj client.Object) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	err := Poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		err := e.Client.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, fmt.Sprintf("still there (err=%v)", err), nil
	})
	if err != nil {
		t.Fatalf("%T %s not deleted: %v", obj, key, err)
	}
}

func mustExist(ctx context.Context, t *testing.T, e *Env, obj client.Object, key client.ObjectKey) {
	t.Helper()
	if err := e.Client.Get(ctx, key, obj); err != nil {
		t.Fatalf("%T %s: %v", obj, key, err)
	}
}

// noFailedCreate fails the test if any event in ns says a controller could not
// create an object (a workload that does not fit quota, LimitRange or Pod Security).
func noFailedCreate(ctx context.Context, t *testing.T, e *Env, ns string) {
	t.Helper()
	var events corev1.EventList
	if err := e.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		if ev.Reason == "FailedCreate" {
			t.Errorf("FailedCreate event on %s/%s: %s", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
		}
	}
}

// TestStoreLifecycle drives a store through install, upgrade, delete (data kept)
// and purge with commits pushed to the fleet repository, against the real
// controllers.
func TestStoreLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const name = "shop"
	ns := "store-" + name
	hrKey := client.ObjectKey{Namespace: ns, Name: name}
	w := cloneFleet(t, env)

	// Install.
	w.writeStore(name, storeFiles(name, "0.1.0", true, false))
	commit := w.push("Create store shop")
	rev, err := env.Reconcile(ctx, commit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(rev, commit) {
		t.Fatalf("artifact revision %s, pushed %s", rev, commit)
	}
	// The environment created the shard's Kustomization, as gitops-api's publisher does.
	checkShardKustomization(ctx, t, env, store.Shard(name))
	hr := waitHelmRelease(ctx, t, env, hrKey, 0)
	if got := hr.Status.History.Latest(); got == nil || got.ChartVersion != "0.1.0" {
		t.Fatalf("installed release history %+v, want chart 0.1.0", hr.Status.History)
	}
	var dep appsv1.Deployment
	mustExist(ctx, t, env, &dep, client.ObjectKey{Namespace: ns, Name: name + "-app"})
	mustExist(ctx, t, env, &corev1.Service{}, client.ObjectKey{Namespace: ns, Name: name + "-app"})
	mustExist(ctx, t, env, &corev1.ConfigMap{}, client.ObjectKey{Namespace: ns, Name: name + "-config"})
	var pvc corev1.PersistentVolumeClaim
	mustExist(ctx, t, env, &pvc, client.ObjectKey{Namespace: ns, Name: name + "-data"})
	// kube-controller-manager turns the Deployment into a Pod, admitted by quota,
	// LimitRange and Pod Security (it stays Pending: no scheduler runs).
	err = Poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err.Error(), nil
		}
		return len(pods.Items) == 1, fmt.Sprintf("%d pods", len(pods.Items)), nil
	})
	if err != nil {
		t.Fatalf("no Pod created for the store's Deployment: %v", err)
	}
	noFailedCreate(ctx, t, env, ns)

	t.Run("flux CLI lists the store", func(t *testing.T) {
		for _, args := range [][]string{{"get", "helmreleases", "-A"}, {"get", "kustomizations", "-A"}} {
			cmd := exec.CommandContext(ctx, env.Tools.Flux, args...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("flux %v: %v\n%s", args, err, out)
			}
			t.Logf("flux %s:\n%s", strings.Join(args, " "), out)
			want := []string{ns, name, "True", "0.1.0"}
			if args[1] == "kustomizations" {
				// flux shortens hashes to 8 hex digits: main@sha1:0123abcd.
				want = []string{"flux-system", store.ShardObjectName(store.Shard(name)), "infrastructure", "True", "main@sha1:" + commit[:8]}
			}
			for _, s := range want {
				if !strings.Contains(string(out), s) {
					t.Errorf("flux %v: output lacks %q", args, s)
				}
			}
		}
	})

	// Upgrade: a new chart version is published and the store asks for it.
	chart := filepath.Join(env.opts.ChartsDir, "fixture", "Chart.yaml")
	data, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chart, []byte(strings.Replace(string(data), "version: 0.1.0", "version: 0.2.0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := env.PublishCharts(ctx); err != nil {
		t.Fatal(err)
	}
	w.writeStore(name, storeFiles(name, "0.2.0", true, false))
	if _, err := env.Reconcile(ctx, w.push("Upgrade store shop to 0.2.0")); err != nil {
		t.Fatal(err)
	}
	hr2 := waitHelmRelease(ctx, t, env, hrKey, hr.Generation)
	if got := hr2.Status.History.Latest(); got == nil || got.ChartVersion != "0.2.0" {
		t.Fatalf("upgraded release history %+v, want chart 0.2.0", hr2.Status.History)
	}
	mustExist(ctx, t, env, &dep, client.ObjectKey{Namespace: ns, Name: name + "-app"})
	if got := dep.Labels["helm.sh/chart"]; got != "fixture-0.2.0" {
		t.Fatalf("Deployment chart label %q after upgrade, want fixture-0.2.0", got)
	}
	noFailedCreate(ctx, t, env, ns)

	// Delete: the HelmRelease file goes; the release is uninstalled, the namespace
	// and the store's volume stay.
	w.writeStore(name, storeFiles(name, "0.2.0", false, false))
	if _, err := env.Reconcile(ctx, w.push("Delete store shop (data retained)")); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, env, &helmv2.HelmRelease{ObjectMeta: objMeta(ns, name)})
	waitGone(ctx, t, env, &appsv1.Deployment{ObjectMeta: objMeta(ns, name+"-app")})
	waitGone(ctx, t, env, &corev1.Service{ObjectMeta: objMeta(ns, name+"-app")})
	mustExist(ctx, t, env, &corev1.Namespace{}, client.ObjectKey{Name: ns})
	mustExist(ctx, t, env, &pvc, client.ObjectKey{Namespace: ns, Name: name + "-data"})
	if pvc.DeletionTimestamp != nil {
		t.Fatalf("store volume %s is being deleted after the release was removed", pvc.Name)
	}

	// Purge: first re-enable pruning of the namespace, then remove the folder.
	w.writeStore(name, storeFiles(name, "0.2.0", false, true))
	if _, err := env.Reconcile(ctx, w.push("Purge store shop: allow pruning its namespace")); err != nil {
		t.Fatal(err)
	}
	w.remove(storeDir(name))
	if _, err := env.Reconcile(ctx, w.push("Purge store shop")); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, env, &corev1.Namespace{ObjectMeta: objMeta("", ns)})
	// The emptied shard keeps its Kustomization (it applied the empty artifact that
	// pruned the store), as with gitops-api.
	checkShardKustomization(ctx, t, env, store.Shard(name))
}

func objMeta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
