package testenv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The shard identity (clusters/local/shard-identity.yaml), asked directly as
// kustomize-controller asks when it impersonates it: a store's objects as render writes
// them are admitted (server-side apply, then prune), and each way out of a store's
// folder is refused, by RBAC or by the admission policy where RBAC cannot narrow, with a
// message that says why. Refusals are tried as dry runs, so a policy that fails to
// refuse leaves nothing behind.
func TestShardIdentityAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + fluxNamespace + ":" + render.ShardServiceAccount}
	shard, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// Admitted: a real store, applied and pruned as kustomize-controller does.
	const name = "lockdown-probe"
	ns := "store-" + name
	files, err := render.Renderer{Options: render.LocalOptions()}.Render(
		store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
			Settings: store.Settings{AdminEmail: "owner@example.com"}}.WithDefaults(FleetCluster), store.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if strings.HasSuffix(f.Path, "/kustomization.yaml") {
			continue
		}
		o, err := DecodeYAML(f.Content)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].GetKind() == "Namespace" && objs[j].GetKind() != "Namespace" })
	for _, o := range objs {
		if err := shard.Patch(ctx, o, client.Apply, client.FieldOwner("kustomize-controller"), client.ForceOwnership); err != nil {
			t.Fatalf("applying the store's %s %s/%s as %s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), render.ShardServiceAccount, err)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		if err := shard.Delete(ctx, o); err != nil {
			t.Errorf("pruning the store's %s %s as %s: %v", o.GetKind(), o.GetName(), render.ShardServiceAccount, err)
		}
	}
	if err := shard.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Errorf("pruning the store's Namespace (a purge) as %s: %v", render.ShardServiceAccount, err)
	}

	if err := policyInForce(ctx, shard); err != nil {
		t.Fatalf("the shard policy is not in force: %v", err)
	}

	// A namespace that is not a store's, for the delete below.
	victim := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lockdown-victim"}}
	if err := env.Client.Create(ctx, victim); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), victim) })

	const storeNS = "store-lockdown-other"
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: storeNS, Labels: map[string]string{"app.kubernetes.io/managed-by": "storefleet"}}}
	if err := env.Client.Create(ctx, other); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), other) })
	y := func(s string) *unstructured.Unstructured {
		t.Helper()
		o, err := DecodeYAML([]byte(s))
		if err != nil || len(o) != 1 {
			t.Fatalf("%v: %s", err, s)
		}
		return o[0]
	}
	binding := func(ns, role, subject string) string {
		return `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: probe, namespace: ` + ns + `}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ` + role + `}
subjects: [` + subject + `]
`
	}
	release := func(extra string) string {
		return `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: probe, namespace: ` + storeNS + `}
spec:
  interval: 10m
  chart: {spec: {chart: fixture, sourceRef: {kind: HelmRepository, name: storefleet, namespace: flux-system}}}
` + extra
	}
	ownSA := `{kind: ServiceAccount, name: storefleet-store, namespace: ` + storeNS + `}`
	for _, c := range []struct {
		what, manifest string
		want           string // in the refusal
	}{
		{"a Namespace not named store-<name>", "apiVersion: v1\nkind: Namespace\nmetadata: {name: evil, labels: {app.kubernetes.io/managed-by: storefleet}}\n",
			"only Namespaces named store-<name>"},
		{"a store Namespace not labelled as Storefleet's", "apiVersion: v1\nkind: Namespace\nmetadata: {name: store-unlabelled}\n",
			"labelled app.kubernetes.io/managed-by=storefleet"},
		{"a RoleBinding in kube-system", binding("kube-system", "admin", `{kind: ServiceAccount, name: default, namespace: kube-system}`),
			"only in a store's namespace"},
		{"a NetworkPolicy in kube-system", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: probe, namespace: kube-system}\nspec: {podSelector: {}}\n",
			"only in a store's namespace"},
		{"a RoleBinding to cluster-admin", binding(storeNS, "cluster-admin", ownSA), "forbidden"},
		{"a RoleBinding to edit", binding(storeNS, "edit", ownSA), "forbidden"},
		{"admin for a user", binding(storeNS, "admin", `{apiGroup: rbac.authorization.k8s.io, kind: User, name: mallory}`),
			"ServiceAccounts of its own namespace"},
		{"admin for another namespace's ServiceAccount", binding(storeNS, "admin", `{kind: ServiceAccount, name: default, namespace: kube-system}`),
			"ServiceAccounts of its own namespace"},
		{"a HelmRelease as helm-controller itself", release(""), "as ServiceAccount storefleet-store"},
		{"a HelmRelease into kube-system", release("  serviceAccountName: storefleet-store\n  targetNamespace: kube-system\n"), "as ServiceAccount storefleet-store"},
		{"a Secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: probe, namespace: " + storeNS + "}\n", "forbidden"},
		{"a ConfigMap", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe, namespace: " + storeNS + "}\n", "forbidden"},
		{"a ClusterRole", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: probe}\nrules: []\n", "forbidden"},
		{"a ClusterRoleBinding", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: probe}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [" + ownSA + "]\n", "forbidden"},
		{"a Deployment in a store namespace", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: probe, namespace: " + storeNS + "}\n" +
			"spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n", "forbidden"},
	} {
		err := shard.Create(ctx, y(c.manifest), client.DryRunAll)
		if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s as %s: want a refusal naming %q, got %v", c.what, render.ShardServiceAccount, c.want, err)
		}
	}
	if err := shard.Delete(ctx, victim.DeepCopy(), client.DryRunAll); err == nil || !strings.Contains(err.Error(), "only Namespaces named store-<name>") {
		t.Errorf("deleting Namespace %s as %s: want the policy's refusal, got %v", victim.Name, render.ShardServiceAccount, err)
	}
}

// A second Flux namespace gets the same confinement: its storefleet-shard may write a
// store Namespace and nothing the policy refuses the first one.
func TestApplyShardIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns = "lockdown-flux"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + render.ShardServiceAccount}
	shard, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	good := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store-second-flux", Labels: map[string]string{"app.kubernetes.io/managed-by": "storefleet"}}}
	if err := shard.Create(ctx, good.DeepCopy(), client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Fatalf("before ApplyShardIdentity: %v, want RBAC's Forbidden (the ServiceAccount has no rights)", err)
	}
	for range 2 { // applying again changes nothing
		if err := env.ApplyShardIdentity(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := shard.Create(ctx, good.DeepCopy(), client.DryRunAll); err != nil {
		t.Errorf("a store Namespace as %s/%s: %v", ns, render.ShardServiceAccount, err)
	}
	if err := policyInForce(ctx, shard); err != nil {
		t.Errorf("Namespace evil as %s/%s: want the policy's refusal: %v", ns, render.ShardServiceAccount, err)
	}
}

// policyInForce waits until the shard policy refuses, as the client's user, a
// Namespace that is not a store's: the API server loads a new admission policy
// asynchronously, so one just applied may not be in force yet.
func policyInForce(ctx context.Context, c client.Client) error {
	evil := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "evil", Labels: map[string]string{"app.kubernetes.io/managed-by": "storefleet"}}}
	return Poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		err := c.Create(ctx, evil.DeepCopy(), client.DryRunAll)
		if err != nil && !strings.Contains(err.Error(), "only Namespaces named store-<name>") {
			return false, "", err
		}
		return err != nil, fmt.Sprintf("admitted (%v)", err), nil
	})
}
