//go:build storefleet_testenv

// Cluster tests of the charts on internal/testenv (real kube-apiserver, kube-controller-manager,
// Flux controllers). internal/testenv is on branch testenv, not yet merged here: this file builds
// only with -tags storefleet_testenv in a tree that has it. LEAD: after merging testenv, delete
// the build constraint above so `make test` runs these.

package charts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// On the real control plane with the real helm-controller: every store chart, for every
// plan, rendered by render and pushed to the fleet repository, installs and is admitted
// whole (no FailedCreate: ResourceQuota, LimitRange and Pod Security admission all judge
// the pods, which stay Pending without a kubelet); and an upgrade keeps the generated
// credentials (Helm lookup, which `helm template` cannot exercise).
func TestStoreChartsOnCluster(t *testing.T) {
	e := testenv.StartT(t, testenv.Options{Root: repoRoot})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	opts := render.LocalOptions()
	opts.Chart.Name = "storefleet" // the HelmRepository of clusters/local/chart-source.yaml
	fleet := filepath.Join(t.TempDir(), "fleet")
	if _, err := testenv.Git(ctx, filepath.Dir(fleet), "clone", "-q", e.FleetURL, fleet); err != nil {
		t.Fatal(err)
	}
	push := func(msg string, stores []store.Store) {
		t.Helper()
		for _, s := range stores {
			files, err := render.Store(s, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				p := filepath.Join(fleet, filepath.FromSlash(f.Path))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}, {"push", "-q", "origin", "main"}} {
			if _, err := testenv.Git(ctx, fleet, args...); err != nil {
				t.Fatal(err)
			}
		}
		commit, err := testenv.Git(ctx, fleet, "rev-parse", "HEAD")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Reconcile(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}

	var stores []store.Store
	wantPods := map[string]int{}
	for _, eng := range store.Engines {
		for _, p := range store.PlanNames {
			s := store.Store{Name: fmt.Sprintf("%s-%s", eng[:2], p), Engine: eng, Plan: p,
				Settings: store.Settings{AdminEmail: "owner@example.com", Title: "Cluster — \"test\""}}.WithDefaults(opts.BaseDomain)
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			stores = append(stores, s)
			dbPods := map[store.Engine]int{store.WooCommerce: 1, store.Medusa: 2}[eng]
			wantPods[s.Name] = store.Plans[p].Replicas + dbPods
		}
	}
	push("stores: one per engine and plan", stores)

	hrGVK := helmv2.GroupVersion.WithKind(helmv2.HelmReleaseKind)
	secrets := map[string]map[string][]byte{}
	for _, s := range stores {
		ns := "store-" + s.Name
		if _, err := e.WaitReady(ctx, hrGVK, client.ObjectKey{Namespace: ns, Name: s.Name}); err != nil {
			t.Fatalf("%s: %v\n%s", s.Name, err, events(ctx, t, e, ns))
		}
		// Admission: every pod the workloads ask for gets created, none refused.
		err := testenv.Poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			var pods corev1.PodList
			if err := e.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
				return false, err.Error(), nil
			}
			if failed := failedCreates(ctx, t, e, ns); failed != "" {
				return false, "", fmt.Errorf("FailedCreate in %s:\n%s", ns, failed)
			}
			return len(pods.Items) == wantPods[s.Name], fmt.Sprintf("%d pods, want %d", len(pods.Items), wantPods[s.Name]), nil
		})
		if err != nil {
			t.Errorf("%s: %v\n%s", s.Name, err, events(ctx, t, e, ns))
		}
		var sec corev1.Secret
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.Name + "-credentials"}, &sec); err != nil {
			t.Fatal(err)
		}
		secrets[s.Name] = sec.Data
	}

	// Upgrade every store (a new title changes the values, so helm-controller upgrades).
	for i := range stores {
		stores[i].Settings.Title = "Renamed"
	}
	push("stores: rename", stores)
	for _, s := range stores {
		ns := "store-" + s.Name
		err := testenv.Poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			hr := &unstructured.Unstructured{}
			hr.SetGroupVersionKind(hrGVK)
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.Name}, hr); err != nil {
				return false, err.Error(), nil
			}
			ready, msg := testenv.IsReady(hr)
			history, _, _ := unstructured.NestedSlice(hr.Object, "status", "history")
			var rev any
			if len(history) > 0 {
				rev = history[0].(map[string]any)["version"]
			}
			return ready && fmt.Sprint(rev) == "2", fmt.Sprintf("release revision %v; %s", rev, msg), nil
		})
		if err != nil {
			t.Fatalf("%s: upgrade: %v\n%s", s.Name, err, events(ctx, t, e, ns))
		}
		var sec corev1.Secret
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.Name + "-credentials"}, &sec); err != nil {
			t.Fatal(err)
		}
		if len(sec.Data) != len(secrets[s.Name]) {
			t.Errorf("%s: credentials keys changed on upgrade: %d → %d", s.Name, len(secrets[s.Name]), len(sec.Data))
		}
		for k, v := range secrets[s.Name] {
			if string(sec.Data[k]) != string(v) {
				t.Errorf("%s: credential %s changed on upgrade", s.Name, k)
			}
		}
	}
}

func listEvents(ctx context.Context, t *testing.T, e *testenv.Env, ns string) []corev1.Event {
	var list corev1.EventList
	if err := e.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Logf("events of %s: %v", ns, err)
	}
	return list.Items
}

func failedCreates(ctx context.Context, t *testing.T, e *testenv.Env, ns string) string {
	var b strings.Builder
	for _, ev := range listEvents(ctx, t, e, ns) {
		if ev.Reason == "FailedCreate" {
			fmt.Fprintf(&b, "  %s/%s: %s\n", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
		}
	}
	return b.String()
}

func events(ctx context.Context, t *testing.T, e *testenv.Env, ns string) string {
	var b strings.Builder
	for _, ev := range listEvents(ctx, t, e, ns) {
		fmt.Fprintf(&b, "  %s %s/%s %s: %s\n", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
	return b.String()
}

// The platform chart's RBAC and ValidatingAdmissionPolicy on a real API server: the API's
// ServiceAccount can request a reconcile and nothing else.
func TestPlatformPolicyOnCluster(t *testing.T) {
	e := testenv.StartT(t, testenv.Options{Root: repoRoot})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storefleet"}}); err != nil {
		t.Fatal(err)
	}
	manifest, err := needHelm(t).Render(ctx, chartDir("storefleet"), TemplateOptions{Release: "storefleet", Namespace: "storefleet",
		ValuesFiles: []string{chartDir("storefleet") + "/values-prod.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeObjects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetNamespace() == "" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" &&
			!strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			o.SetNamespace("storefleet")
		}
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}

	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:storefleet:storefleet-gitops-api",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:storefleet", "system:authenticated"}}
	api, err := client.New(cfg, client.Options{Scheme: e.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	repo := &unstructured.Unstructured{}
	repo.SetGroupVersionKind(schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"})
	repo.SetNamespace("flux-system")
	repo.SetName("fleet")
	patch := func(body string) error {
		return api.Patch(ctx, repo.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(body)))
	}
	// The policy takes a moment to be loaded by the API server's admission plugin; until then
	// a spec patch goes through, so each try sets a new value.
	pctx, pcancel := context.WithTimeout(ctx, 60*time.Second)
	defer pcancel()
	var last error
	for i := 0; ; i++ {
		last = patch(fmt.Sprintf(`{"spec":{"interval":"%dm"}}`, 20+i))
		if last != nil && strings.Contains(last.Error(), "may not change the spec") {
			break
		}
		if pctx.Err() != nil {
			vap := &unstructured.Unstructured{}
			vap.SetGroupVersionKind(schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"})
			_ = e.Client.Get(ctx, client.ObjectKey{Name: "storefleet-gitops-api-reconcile-only"}, vap)
			t.Fatalf("a spec patch by gitops-api was not denied by the admission policy; last result: %v\npolicy status: %v", last, vap.Object["status"])
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := patch(fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))); err != nil {
		t.Errorf("requesting a reconcile was refused: %v", err)
	}
	for name, body := range map[string]string{
		"another annotation": `{"metadata":{"annotations":{"example.com/x":"y"}}}`,
		"a label":            `{"metadata":{"labels":{"x":"y"}}}`,
		"a finalizer":        `{"metadata":{"finalizers":["example.com/x"]}}`,
	} {
		if err := patch(body); err == nil || !strings.Contains(err.Error(), "gitops-api may") {
			t.Errorf("patching %s: want the policy's denial, got %v", name, err)
		}
	}
	// RBAC: no create, delete, or anything outside Flux reads.
	if err := api.Delete(ctx, repo.DeepCopy()); err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("delete GitRepository: want Forbidden, got %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "storefleet"}}
	if err := api.Create(ctx, cm); err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("create ConfigMap: want Forbidden, got %v", err)
	}
	var secrets corev1.SecretList
	if err := api.List(ctx, &secrets, client.InNamespace("flux-system")); err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("list Secrets: want Forbidden, got %v", err)
	}
	hrs := &unstructured.UnstructuredList{}
	hrs.SetGroupVersionKind(helmv2.GroupVersion.WithKind("HelmReleaseList"))
	if err := api.List(ctx, hrs); err != nil {
		t.Errorf("list HelmReleases (status needs it): %v", err)
	}
}
