// Cluster tests of the charts on internal/testenv (real kube-apiserver, kube-controller-manager,
// Flux controllers).

package charts

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/kube"
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
			// The chart source the store's HelmRelease references comes with it, as
			// gitops-api commits it.
			shared, err := render.SharedChartSource(s, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range append(files, shared) {
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

var (
	gitRepositoryGVK    = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	externalArtifactGVK = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "ExternalArtifact"}
	kustomizationGVK    = schema.GroupVersionKind{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"}
	kustomizationGVR    = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
)

// publisherFieldManager is the shard publisher's server-side apply field manager (kube.FieldManager).
const publisherFieldManager = kube.FieldManager

const platformPolicy = "storefleet-gitops-api-flux-writes"

func object(gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// policyDenied reports whether err is the platform admission policy's denial with message want.
func policyDenied(err error, want string) bool {
	return err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+platformPolicy+"'") &&
		strings.Contains(err.Error(), want)
}

// rbacDenied reports whether err is RBAC's refusal of verb (not the policy's).
// installRender does what helm install --namespace storefleet --create-namespace does
// with the platform chart's render for opts: the namespace, then every object, the
// namespaced ones in it. It returns the objects created.
func installRender(ctx context.Context, t *testing.T, e *testenv.Env, opts TemplateOptions) []*unstructured.Unstructured {
	t.Helper()
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storefleet"}}); err != nil {
		t.Fatal(err)
	}
	manifest, err := needHelm(t).Render(ctx, chartDir("storefleet"), opts)
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
	return objs
}

func rbacDenied(err error, verb string) bool {
	return err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "cannot "+verb+" resource") &&
		!strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
}

// The platform chart's RBAC and ValidatingAdmissionPolicy on a real API server, impersonating
// the API's ServiceAccount: it can create a shard's ExternalArtifact exactly as the publisher
// does and write its status, server-side apply the shard's Kustomization
// (render.ShardKustomization with the production layout values-prod.yaml sets, and with the
// default layout) and bring it to another layout, and nothing else. Where RBAC already refuses
// something, a second pass grants it through an extra Role to show the policy refuses it on
// its own.
func TestPlatformPolicyOnCluster(t *testing.T) {
	e := testenv.StartT(t, testenv.Options{Root: repoRoot})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objs := installRender(ctx, t, e, TemplateOptions{Release: "storefleet", Namespace: "storefleet",
		ValuesFiles: []string{chartDir("storefleet") + "/values-prod.yaml"}})
	// A Kustomization to try to patch (suspended: kustomize-controller leaves it alone).
	ks := object(kustomizationGVK, "flux-system", "policy-probe")
	ks.Object["spec"] = map[string]any{"interval": "10m", "path": "./", "prune": false, "suspend": true,
		"sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}}
	if err := e.Client.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}

	sa := "system:serviceaccount:storefleet:storefleet-gitops-api"
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:storefleet", "system:authenticated"}}
	api, err := client.New(cfg, client.Options{Scheme: e.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	repo := object(gitRepositoryGVK, "flux-system", "fleet")
	patch := func(u *unstructured.Unstructured, body string) error {
		return api.Patch(ctx, u.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(body)))
	}
	requestedAt := func() string {
		return fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
	}
	// The policy takes a moment to be loaded by the API server's admission plugin; until then
	// a create RBAC allows but the policy refuses (a misnamed artifact) goes through, so each
	// try uses a new name and removes what got through.
	pctx, pcancel := context.WithTimeout(ctx, 60*time.Second)
	defer pcancel()
	var last error
	for i := 0; ; i++ {
		probe := object(externalArtifactGVK, "flux-system", fmt.Sprintf("probe-%d", i))
		probe.SetLabels(map[string]string{"storefleet.io/shard": "3f0"})
		last = api.Create(ctx, probe)
		if policyDenied(last, "named stores-<shard>") {
			break
		}
		if last == nil {
			_ = e.Client.Delete(ctx, probe)
		}
		if pctx.Err() != nil {
			vap := &unstructured.Unstructured{}
			vap.SetGroupVersionKind(schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"})
			_ = e.Client.Get(ctx, client.ObjectKey{Name: platformPolicy}, vap)
			t.Fatalf("a misnamed ExternalArtifact by gitops-api was not denied by the admission policy; last result: %v\npolicy status: %v", last, vap.Object["status"])
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Flux sources: gitops-api patches the fleet GitRepository alone (RBAC, by name), and only
	// its reconcile request (the policy): the fetch it asks for when the shared chart sources
	// changed. Kustomizations: RBAC lets it patch those of the Flux namespace (the shards'
	// server-side apply), the policy none but a shard's.
	if err := patch(repo, requestedAt()); err != nil {
		t.Errorf("a reconcile request on the fleet GitRepository: %v", err)
	}
	if err := patch(repo, `{"spec":{"interval":"1s"}}`); !policyDenied(err, "may not change the spec") {
		t.Errorf("patching the spec of the fleet GitRepository: want the policy's denial, got %v", err)
	}
	if err := patch(object(gitRepositoryGVK, "flux-system", "another"), requestedAt()); !rbacDenied(err, "patch") {
		t.Errorf("a reconcile request on another GitRepository: want RBAC's Forbidden, got %v", err)
	}
	if err := patch(ks, requestedAt()); !policyDenied(err, "may write only Kustomizations named stores-<shard>") {
		t.Errorf("a reconcile request on Kustomization policy-probe (not a shard's): want the policy's denial, got %v", err)
	}
	if err := patch(ks, `{"spec":{"sourceRef":{"kind":"ExternalArtifact","name":"stores-3f0"}}}`); !policyDenied(err, "may write only Kustomizations named stores-<shard>") {
		t.Errorf("patching the spec of Kustomization policy-probe (not a shard's): want the policy's denial, got %v", err)
	}

	// ExternalArtifacts: creates other than the publisher's are refused by the policy.
	artifact := func(ns, name string, labels map[string]string) *unstructured.Unstructured {
		u := object(externalArtifactGVK, ns, name)
		u.SetLabels(labels)
		return u
	}
	shard := map[string]string{"storefleet.io/shard": "3f0"}
	withSourceRef := artifact("flux-system", "stores-3f0", shard)
	withSourceRef.Object["spec"] = map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}}
	withAnnotation := artifact("flux-system", "stores-3f0", shard)
	withAnnotation.SetAnnotations(map[string]string{"example.com/x": "y"})
	withFinalizer := artifact("flux-system", "stores-3f0", shard)
	withFinalizer.SetFinalizers([]string{"example.com/x"})
	// Flux's finalizer is allowed on a shard Kustomization only.
	withFluxFinalizer := artifact("flux-system", "stores-3f0", shard)
	withFluxFinalizer.SetFinalizers([]string{"finalizers.fluxcd.io"})
	withOwner := artifact("flux-system", "stores-3f0", shard)
	withOwner.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x",
		UID: types.UID("00000000-0000-0000-0000-000000000001")}})
	for _, c := range []struct {
		name string
		obj  *unstructured.Unstructured
		msg  string
	}{
		{"stores-zzz", artifact("flux-system", "stores-zzz", map[string]string{"storefleet.io/shard": "zzz"}), "named stores-<shard>"},
		{"two hex digits (the old shards)", artifact("flux-system", "stores-3f", map[string]string{"storefleet.io/shard": "3f"}), "named stores-<shard>"},
		{"four hex digits", artifact("flux-system", "stores-3f0a", map[string]string{"storefleet.io/shard": "3f0a"}), "named stores-<shard>"},
		{"not hex", artifact("flux-system", "stores-3g0", map[string]string{"storefleet.io/shard": "3g0"}), "named stores-<shard>"},
		{"fleet-3f0", artifact("flux-system", "fleet-3f0", shard), "named stores-<shard>"},
		{"wrong shard label", artifact("flux-system", "stores-3f0", map[string]string{"storefleet.io/shard": "3e0"}), "single label"},
		{"extra label", artifact("flux-system", "stores-3f0", map[string]string{"storefleet.io/shard": "3f0", "x": "y"}), "single label"},
		// The controller-sharding key is a Kustomization's: kustomize-controller reads the
		// artifacts through an unfiltered cache.
		{"controller-sharding key", artifact("flux-system", "stores-3f0", map[string]string{"storefleet.io/shard": "3f0", "sharding.fluxcd.io/key": "shard1"}), "single label"},
		{"no label", artifact("flux-system", "stores-3f0", nil), "single label"},
		{"annotation", withAnnotation, "without annotations"},
		{"finalizer", withFinalizer, "finalizers"},
		{"Flux's finalizer", withFluxFinalizer, "finalizers"},
		{"owner reference", withOwner, "owner references"},
		{"spec.sourceRef", withSourceRef, "empty spec"},
	} {
		err := api.Create(ctx, c.obj.DeepCopy())
		if !policyDenied(err, c.msg) {
			t.Errorf("creating ExternalArtifact %s (%s): want the policy's denial %q, got %v", c.obj.GetName(), c.name, c.msg, err)
		}
		if err == nil { // keep the next cases independent of this failure
			if err := e.Client.Delete(ctx, c.obj.DeepCopy()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Only in the Flux namespace (a Role, not a ClusterRole).
	if err := api.Create(ctx, artifact("storefleet", "stores-3f0", shard)); !rbacDenied(err, "create") {
		t.Errorf("creating ExternalArtifact storefleet/stores-3f0 outside the Flux namespace: want RBAC's Forbidden, got %v", err)
	}

	// What the publisher does: create stores-3f0 with its shard label, then write its status.
	if err := api.Create(ctx, artifact("flux-system", "stores-3f0", shard)); err != nil {
		t.Fatalf("creating ExternalArtifact stores-3f0 as the shard publisher does was refused: %v", err)
	}
	ea := object(externalArtifactGVK, "flux-system", "stores-3f0")
	if err := api.Get(ctx, client.ObjectKeyFromObject(ea), ea); err != nil {
		t.Fatalf("get stores-3f0: %v", err)
	}
	revision := "main@sha1:0123456789abcdef0123456789abcdef01234567"
	now := time.Now().UTC().Format(time.RFC3339)
	ea.Object["status"] = map[string]any{
		"artifact": map[string]any{
			"url":            "http://storefleet-gitops-api.storefleet.svc.cluster.local:80/artifacts/prod/3f0/abc.tar.gz",
			"path":           "prod/3f0/abc.tar.gz",
			"revision":       revision,
			"digest":         "sha256:" + strings.Repeat("ab", 32),
			"lastUpdateTime": now,
		},
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "Succeeded",
			"message": "stored artifact for revision '" + revision + "'", "lastTransitionTime": now}},
	}
	if err := api.Status().Update(ctx, ea); err != nil {
		t.Fatalf("updating the status of stores-3f0 as the shard publisher does was refused: %v", err)
	}
	if err := api.Status().Patch(ctx, object(externalArtifactGVK, "flux-system", "stores-3f0"),
		client.RawPatch(types.MergePatchType, []byte(`{"status":{"artifact":{"size":42}}}`))); err != nil {
		t.Errorf("patching the status of stores-3f0 was refused: %v", err)
	}
	stored := object(externalArtifactGVK, "flux-system", "stores-3f0")
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(stored), stored); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(stored.Object, "status", "artifact", "revision"); got != revision {
		t.Errorf("stored artifact revision %q, want %q", got, revision)
	}
	if got, _, _ := unstructured.NestedInt64(stored.Object, "status", "artifact", "size"); got != 42 {
		t.Errorf("stored artifact size %d, want 42 (the status patch)", got)
	}
	// A status update cannot carry label or spec changes: the API server keeps the stored
	// ones (and the policy would refuse a change if it did not).
	sneaky := stored.DeepCopy()
	sneaky.SetLabels(map[string]string{"storefleet.io/shard": "3f0", "x": "y"})
	sneaky.Object["spec"] = map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}}
	if err := api.Status().Update(ctx, sneaky); err != nil && !policyDenied(err, "may not change") {
		t.Errorf("status update carrying label and spec changes: %v", err)
	}
	after := object(externalArtifactGVK, "flux-system", "stores-3f0")
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(after), after); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after.GetLabels()) != fmt.Sprint(shard) {
		t.Errorf("labels after a status update carrying a change: %v, want %v", after.GetLabels(), shard)
	}
	if _, has, _ := unstructured.NestedMap(after.Object, "spec", "sourceRef"); has {
		t.Errorf("spec after a status update carrying a sourceRef: %v", after.Object["spec"])
	}

	// The object itself: no update, patch or delete (RBAC).
	relabelled := after.DeepCopy()
	relabelled.SetLabels(map[string]string{"storefleet.io/shard": "3f1"})
	if err := api.Update(ctx, relabelled); !rbacDenied(err, "update") {
		t.Errorf("updating the labels of stores-3f0: want RBAC's Forbidden, got %v", err)
	}
	if err := patch(after, `{"spec":{"sourceRef":{"kind":"GitRepository","name":"fleet"}}}`); !rbacDenied(err, "patch") {
		t.Errorf("patching the spec of stores-3f0: want RBAC's Forbidden, got %v", err)
	}
	if err := api.Delete(ctx, after.DeepCopy()); !rbacDenied(err, "delete") {
		t.Errorf("deleting stores-3f0: want RBAC's Forbidden, got %v", err)
	}

	// Shard Kustomizations: the publisher server-side applies render.ShardKustomization with
	// the layout gitops-api reads from the chart's env, here values-prod.yaml's: production's.
	prod := shardLayoutFromEnv(t, deploymentEnv(t, objs))
	if !reflect.DeepEqual(prod, productionShardLayout()) {
		t.Fatalf("values-prod.yaml gives the shard layout %+v, want production's %+v", prod, productionShardLayout())
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// shardKs is what the publisher sends (internal/kube): the typed object without status
	// and creationTimestamp.
	shardKs := func(l render.ShardLayout, shard string) *unstructured.Unstructured {
		t.Helper()
		k, err := render.ShardKustomization(l, shard)
		if err != nil {
			t.Fatal(err)
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(k)
		if err != nil {
			t.Fatal(err)
		}
		unstructured.RemoveNestedField(m, "status")
		unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		return &unstructured.Unstructured{Object: m}
	}
	// apply server-side applies u as gitops-api, as the publisher does.
	apply := func(u *unstructured.Unstructured) error {
		t.Helper()
		body, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		force := true
		_, err = dyn.Resource(kustomizationGVR).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: publisherFieldManager, Force: &force})
		return err
	}
	getKs := func(name string) *unstructured.Unstructured {
		t.Helper()
		u := object(kustomizationGVK, "flux-system", name)
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			t.Fatalf("get Kustomization %s: %v", name, err)
		}
		return u
	}
	// checkLayout compares a stored shard Kustomization with what layout gives.
	checkLayout := func(name string, l render.ShardLayout) {
		t.Helper()
		got, want := getKs(name), shardKs(l, strings.TrimPrefix(name, "stores-"))
		for _, f := range []string{"interval", "retryInterval", "timeout", "prune", "sourceRef", "path", "dependsOn", "decryption"} {
			g, _, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", f)
			w, _, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", f)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("Kustomization %s: spec.%s is %v, want %v", name, f, g, w)
			}
		}
		if !reflect.DeepEqual(got.GetLabels(), want.GetLabels()) {
			t.Errorf("Kustomization %s: labels %v, want %v", name, got.GetLabels(), want.GetLabels())
		}
	}

	fiveFluxShards := prod
	fiveFluxShards.FluxShards = 5
	if k := fiveFluxShards.FluxShards.Key("3f0") + fiveFluxShards.FluxShards.Key("b05"); k != "shard3shard1" {
		t.Fatalf("the cases below expect 3f0 and b05 on controller shards 3 and 1 of 5, not %s", k)
	}
	// Admitted: a new shard's Kustomization in the production and in the default layout (a
	// CREATE), the same again (an UPDATE that changes nothing), and a change of layout after a
	// restart with other values (an UPDATE of the spec), there and back.
	for _, c := range []struct {
		what   string
		layout render.ShardLayout
		shard  string
	}{
		{"production layout, new shard", prod, "3f0"},
		{"default layout, new shard", render.DefaultShardLayout(), "a01"},
		{"production layout, applied again", prod, "3f0"},
		{"default layout over the production one", render.DefaultShardLayout(), "3f0"},
		{"production layout over the default one", prod, "3f0"},
		// Flux controller sharding (shards.fluxShards): stores-3f0 is controller shard 3 of 5,
		// b05 shard 1; the key label comes and goes with the setting.
		{"five controller shards over production (the key added)", fiveFluxShards, "3f0"},
		{"production over five controller shards (the key removed)", prod, "3f0"},
		{"five controller shards, new shard", fiveFluxShards, "b05"},
	} {
		if err := apply(shardKs(c.layout, c.shard)); err != nil {
			t.Fatalf("applying Kustomization stores-%s (%s) as the shard publisher does was refused: %v", c.shard, c.what, err)
		}
		checkLayout("stores-"+c.shard, c.layout)
	}
	if err := patch(getKs("stores-3f0"), requestedAt()); err != nil {
		t.Errorf("a reconcile request on shard Kustomization stores-3f0 was refused: %v", err)
	}

	// The real publisher (internal/kube) as gitops-api: the artifact, its status, then the
	// Kustomization, all admitted.
	publisher, err := kube.New(kube.Config{Rest: cfg, FluxNamespace: "flux-system",
		ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) { return render.ShardKustomization(prod, shard) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := publisher.PublishArtifact(ctx, "b02", kube.Artifact{
		URL:  "http://storefleet-gitops-api.storefleet.svc.cluster.local:80/artifacts/prod/b02/abc.tar.gz",
		Path: "prod/b02/abc.tar.gz", Revision: revision, Digest: "sha256:" + strings.Repeat("cd", 32), Size: 7,
	}); err != nil {
		t.Fatalf("the shard publisher (kube.Watcher.PublishArtifact) as gitops-api: %v", err)
	}
	checkLayout("stores-b02", prod)
	managers := map[string]bool{}
	for _, f := range getKs("stores-b02").GetManagedFields() {
		managers[f.Manager] = true
	}
	if !managers[publisherFieldManager] {
		t.Errorf("Kustomization stores-b02 has no fields managed by %s: %v", publisherFieldManager, managers)
	}

	// Edits of a shard Kustomization the policy refuses, on CREATE and on UPDATE alike.
	type edit = func(u *unstructured.Unstructured)
	gitSource := func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedMap(u.Object, map[string]any{"kind": "GitRepository", "name": "fleet"}, "spec", "sourceRef")
	}
	kubeConfig := func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedMap(u.Object, map[string]any{"secretRef": map[string]any{"name": "remote-cluster"}}, "spec", "kubeConfig")
	}
	// A shard applies as render.ShardServiceAccount: another ServiceAccount, or none
	// (kustomize-controller itself, cluster-admin), would lift the shard's least privilege.
	serviceAccount := func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, "cluster-admin", "spec", "serviceAccountName")
	}
	noServiceAccount := func(u *unstructured.Unstructured) {
		unstructured.RemoveNestedField(u.Object, "spec", "serviceAccountName")
	}
	otherPath := func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, "./other", "spec", "path")
	}
	otherSecret := func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, "other-key", "spec", "decryption", "secretRef", "name")
	}
	postBuild := func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"kind": "Secret", "name": "sops-age"}}, "spec", "postBuild", "substituteFrom")
	}

	// Refused on CREATE: any other name, label, metadata or spec than a shard layout gives.
	refusedCreate := []struct {
		what string
		edit edit
		msg  string
	}{
		{"two hex digits (the old shards)", func(u *unstructured.Unstructured) {
			u.SetName("stores-3f")
			u.SetLabels(map[string]string{"storefleet.io/shard": "3f"})
			_ = unstructured.SetNestedField(u.Object, "stores-3f", "spec", "sourceRef", "name")
		}, "named stores-<shard>"},
		{"four hex digits", func(u *unstructured.Unstructured) {
			u.SetName("stores-c03a")
			u.SetLabels(map[string]string{"storefleet.io/shard": "c03a"})
			_ = unstructured.SetNestedField(u.Object, "stores-c03a", "spec", "sourceRef", "name")
		}, "named stores-<shard>"},
		{"not a shard's name", func(u *unstructured.Unstructured) { u.SetName("infrastructure-c03") }, "named stores-<shard>"},
		{"wrong shard label", func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"storefleet.io/shard": "c04"}) }, "single label"},
		{"extra label", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{"storefleet.io/shard": "c03", "x": "y"})
		}, "single label"},
		{"no label", func(u *unstructured.Unstructured) { u.SetLabels(nil) }, "single label"},
		{"a controller-sharding key that is not shard<i>", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{"storefleet.io/shard": "c03", "sharding.fluxcd.io/key": "main"})
		}, "single label"},
		{"annotation", func(u *unstructured.Unstructured) { u.SetAnnotations(map[string]string{"example.com/x": "y"}) }, "without annotations"},
		{"finalizer", func(u *unstructured.Unstructured) { u.SetFinalizers([]string{"example.com/x"}) }, "finalizers"},
		{"Flux's finalizer and another", func(u *unstructured.Unstructured) {
			u.SetFinalizers([]string{"finalizers.fluxcd.io", "example.com/x"})
		}, "finalizers"},
		{"a GitRepository source", gitSource, "spec.sourceRef"},
		{"another shard's artifact", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "stores-c04", "spec", "sourceRef", "name")
		}, "spec.sourceRef"},
		{"an artifact of another namespace", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "storefleet", "spec", "sourceRef", "namespace")
		}, "spec.sourceRef"},
		{"an artifact of another API group", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "example.com/v1", "spec", "sourceRef", "apiVersion")
		}, "spec.sourceRef"},
		{"spec.kubeConfig", kubeConfig, "without spec.kubeConfig"},
		{"another spec.serviceAccountName", serviceAccount, "only with spec.serviceAccountName " + render.ShardServiceAccount},
		{"no spec.serviceAccountName", noServiceAccount, "only with spec.serviceAccountName " + render.ShardServiceAccount},
		{"another path", otherPath, "spec.path ./"},
		{"no path", func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "path") }, "spec.path ./"},
		{"another decryption Secret", otherSecret, "SOPS and Secret sops-age"},
		{"decryption by a cloud identity", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "kms", "spec", "decryption", "serviceAccountName")
		}, "SOPS and Secret sops-age"},
		{"postBuild reading a Secret", postBuild, "spec fields of a shard layout"},
		{"targetNamespace", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "kube-system", "spec", "targetNamespace")
		}, "spec fields of a shard layout"},
	}
	for _, c := range refusedCreate {
		u := shardKs(prod, "c03")
		c.edit(u)
		err := apply(u)
		if !policyDenied(err, c.msg) {
			t.Errorf("creating Kustomization %s (%s): want the policy's denial %q, got %v", u.GetName(), c.what, c.msg, err)
		}
		if err == nil { // keep the next cases independent of this failure
			if err := e.Client.Delete(ctx, object(kustomizationGVK, "flux-system", u.GetName())); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Refused on UPDATE of stores-3f0: the same spec rules, and no label or annotation change.
	before := getKs("stores-3f0")
	for _, c := range []struct {
		what string
		edit edit
		msg  string
	}{
		{"a GitRepository source", gitSource, "spec.sourceRef"},
		{"another shard's artifact", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "stores-a01", "spec", "sourceRef", "name")
		}, "spec.sourceRef"},
		{"spec.kubeConfig", kubeConfig, "without spec.kubeConfig"},
		{"another spec.serviceAccountName", serviceAccount, "only with spec.serviceAccountName " + render.ShardServiceAccount},
		{"no spec.serviceAccountName", noServiceAccount, "only with spec.serviceAccountName " + render.ShardServiceAccount},
		{"another path", otherPath, "spec.path ./"},
		{"another decryption Secret", otherSecret, "SOPS and Secret sops-age"},
		{"postBuild reading a Secret", postBuild, "spec fields of a shard layout"},
		{"wrong shard label", func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"storefleet.io/shard": "3f1"}) },
			"only labelled storefleet.io/shard=<shard>"},
		{"extra label", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{"storefleet.io/shard": "3f0", "x": "y"})
		}, "at most sharding.fluxcd.io/key"},
		{"a controller-sharding key that is not shard<i>", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{"storefleet.io/shard": "3f0", "sharding.fluxcd.io/key": "shard0"})
		}, "at most sharding.fluxcd.io/key"},
		{"annotation", func(u *unstructured.Unstructured) { u.SetAnnotations(map[string]string{"example.com/x": "y"}) }, "no annotation but"},
	} {
		u := shardKs(prod, "3f0")
		c.edit(u)
		if err := apply(u); !policyDenied(err, c.msg) {
			t.Errorf("applying Kustomization stores-3f0 with %s: want the policy's denial %q, got %v", c.what, c.msg, err)
		}
	}
	if err := patch(before, `{"spec":{"sourceRef":{"kind":"GitRepository","name":"fleet"}}}`); !policyDenied(err, "spec.sourceRef") {
		t.Errorf("patching the sourceRef of stores-3f0: want the policy's denial, got %v", err)
	}
	if after := getKs("stores-3f0"); !reflect.DeepEqual(after.Object["spec"], before.Object["spec"]) ||
		!reflect.DeepEqual(after.GetLabels(), before.GetLabels()) {
		t.Errorf("refused applies changed stores-3f0:\n%v %v\nwas\n%v %v", after.GetLabels(), after.Object["spec"], before.GetLabels(), before.Object["spec"])
	}
	// RBAC: Kustomizations only in the Flux namespace, never deleted, no status.
	outside := shardKs(prod, "3f0")
	outside.SetNamespace("storefleet")
	if err := apply(outside); !rbacDenied(err, "patch") {
		t.Errorf("applying Kustomization storefleet/stores-3f0 outside the Flux namespace: want RBAC's Forbidden, got %v", err)
	}
	if err := api.Delete(ctx, object(kustomizationGVK, "flux-system", "stores-3f0")); !rbacDenied(err, "delete") {
		t.Errorf("deleting Kustomization stores-3f0: want RBAC's Forbidden, got %v", err)
	}
	if err := api.Status().Patch(ctx, object(kustomizationGVK, "flux-system", "stores-3f0"),
		client.RawPatch(types.MergePatchType, []byte(`{"status":{"lastAppliedRevision":"x"}}`))); !rbacDenied(err, "patch") {
		t.Errorf("patching the status of Kustomization stores-3f0: want RBAC's Forbidden, got %v", err)
	}

	// Defence in depth: grant what RBAC refused above (as a careless extra Role would) and
	// the policy still refuses it.
	extra := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "policy-probe-extra", Namespace: "flux-system"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"externalartifacts"}, Verbs: []string{"update", "patch", "delete"}},
			{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"gitrepositories"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"gitrepositories/status"}, Verbs: []string{"patch"}},
			{APIGroups: []string{"kustomize.toolkit.fluxcd.io"}, Resources: []string{"kustomizations"}, Verbs: []string{"delete"}},
			{APIGroups: []string{"kustomize.toolkit.fluxcd.io"}, Resources: []string{"kustomizations/status"}, Verbs: []string{"patch"}},
		}}
	extraBinding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "policy-probe-extra", Namespace: "flux-system"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: extra.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "storefleet-gitops-api", Namespace: "storefleet"}}}
	for _, o := range []client.Object{extra, extraBinding} {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The authorizer sees the new Role after a moment; until then RBAC answers.
	relabel := `{"metadata":{"labels":{"storefleet.io/shard":"3f1"}}}`
	err = testenv.Poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		err := patch(after, relabel)
		switch {
		case err == nil:
			return false, "", fmt.Errorf("gitops-api relabelled ExternalArtifact stores-3f0: the policy did not refuse it")
		case policyDenied(err, "may not change labels"):
			return true, "", nil
		case rbacDenied(err, "patch"):
			return false, err.Error(), nil
		}
		return false, "", fmt.Errorf("patching the labels of stores-3f0 with the extra Role: want the policy's denial, got %v", err)
	})
	if err != nil {
		t.Error(err)
	}
	if err := patch(after, `{"spec":{"sourceRef":{"kind":"GitRepository","name":"fleet"}}}`); !policyDenied(err, "may not change the spec") {
		t.Errorf("patching the spec of stores-3f0 with the extra Role: want the policy's denial, got %v", err)
	}
	// With patch granted on GitRepositories, only a reconcile request would pass.
	if err := patch(repo, requestedAt()); err != nil {
		t.Errorf("a reconcile request on the GitRepository with the extra Role was refused: %v", err)
	}
	for name, c := range map[string]struct{ body, msg string }{
		"the spec":           {`{"spec":{"interval":"42m"}}`, "may not change the spec"},
		"another annotation": {`{"metadata":{"annotations":{"example.com/x":"y"}}}`, "no annotation but"},
		"a label":            {`{"metadata":{"labels":{"x":"y"}}}`, "may not change labels"},
		"a finalizer":        {`{"metadata":{"finalizers":["example.com/x"]}}`, "may not change labels, finalizers"},
	} {
		if err := patch(repo, c.body); !policyDenied(err, c.msg) {
			t.Errorf("patching %s on the GitRepository with the extra Role: want the policy's denial %q, got %v", name, c.msg, err)
		}
	}
	other := object(gitRepositoryGVK, "flux-system", "stores-3e0")
	other.Object["spec"] = map[string]any{"url": "http://127.0.0.1:1/x.git", "interval": "10m"}
	if err := api.Create(ctx, other); !policyDenied(err, "no other create") {
		t.Errorf("creating a GitRepository with the extra Role: want the policy's denial, got %v", err)
	}
	if err := api.Status().Patch(ctx, repo.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"observedGeneration":-1}}`))); !policyDenied(err, "no other subresource") {
		t.Errorf("patching the status of the GitRepository with the extra Role: want the policy's denial, got %v", err)
	}
	if err := api.Delete(ctx, after.DeepCopy()); !policyDenied(err, "no delete") {
		t.Errorf("deleting stores-3f0 with the extra Role: want the policy's denial, got %v", err)
	}
	if err := api.Delete(ctx, object(kustomizationGVK, "flux-system", "stores-3f0")); !policyDenied(err, "no delete") {
		t.Errorf("deleting Kustomization stores-3f0 with the extra Role: want the policy's denial, got %v", err)
	}
	if err := api.Status().Patch(ctx, object(kustomizationGVK, "flux-system", "stores-3f0"),
		client.RawPatch(types.MergePatchType, []byte(`{"status":{"lastAppliedRevision":"x"}}`))); !policyDenied(err, "no other subresource") {
		t.Errorf("patching the status of Kustomization stores-3f0 with the extra Role: want the policy's denial, got %v", err)
	}

	// RBAC: nothing outside Flux reads, no delete of Flux sources.
	if err := api.Delete(ctx, repo.DeepCopy()); !rbacDenied(err, "delete") {
		t.Errorf("delete GitRepository: want RBAC's Forbidden, got %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "storefleet"}}
	if err := api.Create(ctx, cm); !rbacDenied(err, "create") {
		t.Errorf("create ConfigMap: want RBAC's Forbidden, got %v", err)
	}
	var secrets corev1.SecretList
	if err := api.List(ctx, &secrets, client.InNamespace("flux-system")); !rbacDenied(err, "list") {
		t.Errorf("list Secrets: want RBAC's Forbidden, got %v", err)
	}
	hrs := &unstructured.UnstructuredList{}
	hrs.SetGroupVersionKind(helmv2.GroupVersion.WithKind("HelmReleaseList"))
	if err := api.List(ctx, hrs); err != nil {
		t.Errorf("list HelmReleases (status needs it): %v", err)
	}
	eas := &unstructured.UnstructuredList{}
	eas.SetGroupVersionKind(externalArtifactGVK.GroupVersion().WithKind("ExternalArtifactList"))
	if err := api.List(ctx, eas, client.InNamespace("flux-system"), client.HasLabels{"storefleet.io/shard"}); err != nil || len(eas.Items) != 2 {
		t.Errorf("list shard ExternalArtifacts in flux-system (the watcher needs it): %d items (want stores-3f0, stores-b02), %v", len(eas.Items), err)
	}
	kss := &unstructured.UnstructuredList{}
	kss.SetGroupVersionKind(kustomizationGVK.GroupVersion().WithKind("KustomizationList"))
	if err := api.List(ctx, kss, client.InNamespace("flux-system"), client.HasLabels{"storefleet.io/shard"}); err != nil || len(kss.Items) != 4 {
		t.Errorf("list shard Kustomizations in flux-system (the watcher needs it): %d items (want stores-3f0, stores-a01, stores-b02, stores-b05), %v", len(kss.Items), err)
	}

	// Without shards.decryptionSecret (the chart's default) the policy refuses any decryption:
	// the same policy rendered with the default values, put in place of the production one.
	defaults, err := needHelm(t).Template(ctx, chartDir("storefleet"), TemplateOptions{Release: "storefleet", Namespace: "storefleet"})
	if err != nil {
		t.Fatal(err)
	}
	vapGVK := schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"}
	vap := object(vapGVK, "", platformPolicy)
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(vap), vap); err != nil {
		t.Fatal(err)
	}
	rendered := find(defaults, "ValidatingAdmissionPolicy", platformPolicy)
	if rendered == nil {
		t.Fatalf("ValidatingAdmissionPolicy %s missing with the default values", platformPolicy)
	}
	vap.Object["spec"] = rendered.Object["spec"]
	if err := e.Client.Update(ctx, vap); err != nil {
		t.Fatal(err)
	}
	// The API server loads the new policy after a moment; until then the old one admits a
	// decryption with sops-age, so each try uses a new shard and removes what got through.
	for i := 0; ; i++ {
		shard := fmt.Sprintf("d%02x", i)
		err := apply(shardKs(prod, shard))
		if policyDenied(err, "only without spec.decryption") {
			break
		}
		if err != nil {
			t.Fatalf("applying Kustomization stores-%s in the production layout: want the policy's denial, got %v", shard, err)
		}
		if err := e.Client.Delete(ctx, object(kustomizationGVK, "flux-system", "stores-"+shard)); err != nil {
			t.Fatal(err)
		}
		if i == 255 {
			t.Fatal("the policy rendered with the default values did not refuse a decrypting shard Kustomization")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := apply(shardKs(render.DefaultShardLayout(), "e05")); err != nil {
		t.Errorf("applying Kustomization stores-e05 in the default layout under the default values' policy was refused: %v", err)
	}
	if err := apply(shardKs(prod, "3f0")); !policyDenied(err, "only without spec.decryption") {
		t.Errorf("re-applying stores-3f0 with decryption under the default values' policy: want the policy's denial, got %v", err)
	}
}
