package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// TestPublisherFieldManager keeps the environment's field manager for the shard
// Kustomizations equal to gitops-api's (testenv cannot import internal/kube).
func TestPublisherFieldManager(t *testing.T) {
	if string(publisherFieldManager) != kube.FieldManager {
		t.Fatalf("testenv applies shard Kustomizations as %q, gitops-api as %q", publisherFieldManager, kube.FieldManager)
	}
}

// TestClusterConfiguration checks clusters/local against the shard layout the
// environment publishes with: it holds no shard Kustomization (the publisher
// creates them; a static one would shadow or duplicate it), the layout's namespace
// is the environment's Flux namespace, and every Kustomization a shard depends on
// is in it (a shard waiting for a missing one would never apply).
func TestClusterConfiguration(t *testing.T) {
	data, err := env.ClusterManifests()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	layout := render.DefaultShardLayout()
	if layout.Namespace != fluxNamespace {
		t.Errorf("render.DefaultShardLayout().Namespace is %q, the environment's Flux namespace %q", layout.Namespace, fluxNamespace)
	}
	kustomizations := map[string]bool{}
	var static []string
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != kustomizationGVK.GroupKind() {
			continue
		}
		if o.GetNamespace() == fluxNamespace {
			kustomizations[o.GetName()] = true
		}
		if _, labelled := o.GetLabels()[store.ShardLabel]; labelled || strings.HasPrefix(o.GetName(), "stores-") {
			static = append(static, o.GetNamespace()+"/"+o.GetName())
		}
	}
	if len(static) > 0 {
		t.Errorf("%s lists %d shard Kustomizations (e.g. %s); the shard publisher creates them, they must not be in Git",
			filepath.Join(env.opts.ClusterDir, "kustomization.yaml"), len(static), static[0])
	}
	for _, d := range layout.DependsOn {
		if !kustomizations[d] {
			t.Errorf("shards depend on Kustomization %s/%s, which the cluster configuration lacks", fluxNamespace, d)
		}
	}
}

// TestShardKustomizationCreatedOnce follows a shard that never held a store: it has
// no ExternalArtifact nor Kustomization; its first store gets both, the
// Kustomization as render.ShardKustomization says, applied by the publisher's
// field manager; a later commit to the shard does not apply the Kustomization again
// (a change made to it stays); emptying the shard prunes the store and keeps the
// Kustomization. No other shard Kustomization exists than those of shards the
// environment published.
func TestShardKustomizationCreatedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := unusedShardStore(t)
	shard := store.Shard(name)
	key := client.ObjectKey{Namespace: fluxNamespace, Name: store.ShardObjectName(shard)}
	if err := env.Client.Get(ctx, key, &kustomizev1.Kustomization{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Kustomization %s of a shard that never held a store: want NotFound, got %v", key, err)
	}
	if err := env.Client.Get(ctx, key, &sourcev1.ExternalArtifact{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ExternalArtifact %s of a shard that never held a store: want NotFound, got %v", key, err)
	}

	// The store is a Namespace and one ServiceAccount: what is under test is the shard,
	// not the store. (A shard applies as render.ShardServiceAccount, which may write
	// only what a store's folder holds, in a store's namespace.)
	cm := client.ObjectKey{Namespace: "store-" + name, Name: "shard-test"}
	configMap := func(v string) map[string]string {
		return map[string]string{"store.yaml": fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n"+
			"  labels:\n    app.kubernetes.io/managed-by: storefleet\n---\n"+
			"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %s\n  namespace: %s\n  annotations:\n    v: %q\n",
			cm.Namespace, cm.Name, cm.Namespace, v)}
	}
	w := cloneFleet(t, env)
	w.writeStore(name, configMap("1"))
	if _, err := env.Reconcile(ctx, w.push("shard test: first store of shard "+shard)); err != nil {
		t.Fatal(err)
	}
	checkShardKustomization(ctx, t, env, shard)
	checkStoreObject(ctx, t, cm, "1")
	checkOnlyPublishedShards(ctx, t)

	// Someone changes the Kustomization: the environment, like gitops-api, does not
	// apply it again while it runs.
	drift := metav1.Duration{Duration: 59 * time.Minute}
	patch := fmt.Appendf(nil, `{"spec":{"interval":%q}}`, drift.Duration.String())
	if err := env.Client.Patch(ctx, &kustomizev1.Kustomization{ObjectMeta: objMeta(key.Namespace, key.Name)},
		client.RawPatch(types.MergePatchType, patch), client.FieldOwner("shard-test")); err != nil {
		t.Fatal(err)
	}
	w.writeStore(name, configMap("2"))
	if _, err := env.Reconcile(ctx, w.push("shard test: change the store")); err != nil {
		t.Fatal(err)
	}
	checkStoreObject(ctx, t, cm, "2")
	var k kustomizev1.Kustomization
	mustExist(ctx, t, env, &k, key)
	if k.Spec.Interval != drift {
		t.Errorf("Kustomization %s interval %s after a second publish of its shard, want %s left as changed: applied again",
			key, k.Spec.Interval.Duration, drift.Duration)
	}

	// Emptied: the empty artifact prunes the store; the Kustomization stays.
	w.remove(storeDir(name))
	if _, err := env.Reconcile(ctx, w.push("shard test: remove the store")); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, env, &corev1.ServiceAccount{ObjectMeta: objMeta(cm.Namespace, cm.Name)})
	mustExist(ctx, t, env, &kustomizev1.Kustomization{}, key)
}

// TestShardFolderMustBeAShard pushes a folder in stores/local/ that is not a shard
// (two hex characters, the old layout): Reconcile refuses it, as gitops-api does,
// and publishes nothing of that commit.
func TestShardFolderMustBeAShard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := cloneFleet(t, env)
	w.write("stores/local/ab/old-layout/configmap.yaml",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old-layout\n  namespace: default\n")
	_, err := env.Reconcile(ctx, w.push("a store in a two-character shard folder"))
	if err == nil || !strings.Contains(err.Error(), "stores/local/ab is not a shard folder") {
		t.Errorf("Reconcile of a commit with stores/local/ab/: want a not-a-shard-folder error, got %v", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: "stores-ab"}, &kustomizev1.Kustomization{}); !apierrors.IsNotFound(err) {
		t.Errorf("Kustomization stores-ab: want NotFound, got %v", err)
	}
	w.remove("stores/local/ab")
	if _, err := env.Reconcile(ctx, w.push("remove the two-character shard folder")); err != nil {
		t.Fatal(err)
	}
}

// unusedShardStore returns a store name whose shard this environment never
// published, so the test sees that shard's first store.
func unusedShardStore(t *testing.T) string {
	t.Helper()
	env.shardMu.Lock()
	defer env.shardMu.Unlock()
	for i := range 10000 {
		name := fmt.Sprintf("shard-test-%d", i)
		if _, used := env.shardTrees[store.Shard(name)]; !used && !env.shardKustomizations[store.Shard(name)] {
			return name
		}
	}
	t.Fatal("no unused shard among 10,000 names")
	return ""
}

// checkShardKustomization fails the test unless Kustomization stores-<shard> is
// render.ShardKustomization's with the default layout, applied by the publisher's
// field manager.
func checkShardKustomization(ctx context.Context, t *testing.T, e *Env, shard string) {
	t.Helper()
	want, err := render.ShardKustomization(render.DefaultShardLayout(), shard)
	if err != nil {
		t.Fatal(err)
	}
	var got kustomizev1.Kustomization
	mustExist(ctx, t, e, &got, client.ObjectKeyFromObject(want))
	if got.Labels[store.ShardLabel] != shard {
		t.Errorf("Kustomization %s labels %v, want %s=%s", got.Name, got.Labels, store.ShardLabel, shard)
	}
	g, w := got.Spec, want.Spec
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"sourceRef", g.SourceRef, w.SourceRef},
		{"path", g.Path, w.Path},
		{"prune", g.Prune, w.Prune},
		{"wait", g.Wait, w.Wait},
		{"serviceAccountName", g.ServiceAccountName, w.ServiceAccountName},
		{"interval", g.Interval, w.Interval},
		{"retryInterval", g.RetryInterval, w.RetryInterval},
		{"timeout", g.Timeout, w.Timeout},
		{"dependsOn", g.DependsOn, w.DependsOn},
		{"decryption", g.Decryption, w.Decryption},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("Kustomization %s spec.%s = %v, want %v (render.ShardKustomization)", got.Name, c.field, c.got, c.want)
		}
	}
	var managers []string
	applied := false
	for _, m := range got.ManagedFields {
		managers = append(managers, fmt.Sprintf("%s/%s", m.Manager, m.Operation))
		if m.Manager == string(publisherFieldManager) && m.Operation == metav1.ManagedFieldsOperationApply {
			applied = true
		}
	}
	if !applied || slices.ContainsFunc(got.ManagedFields, func(m metav1.ManagedFieldsEntry) bool { return m.Manager == string(fieldOwner) }) {
		t.Errorf("Kustomization %s managers %v: want an Apply by %s and none by %s", got.Name, managers, publisherFieldManager, fieldOwner)
	}
}

func checkStoreObject(ctx context.Context, t *testing.T, key client.ObjectKey, v string) {
	t.Helper()
	var sa corev1.ServiceAccount
	mustExist(ctx, t, env, &sa, key)
	if sa.Annotations["v"] != v {
		t.Fatalf("ServiceAccount %s annotations %v, want v=%s", key, sa.Annotations, v)
	}
}

// checkOnlyPublishedShards fails the test if a Kustomization in the Flux namespace
// looks like a shard's (named stores-*, or labelled with a shard) but is not one
// the environment created: left from the static layout of 256, or malformed.
func checkOnlyPublishedShards(ctx context.Context, t *testing.T) {
	t.Helper()
	var list kustomizev1.KustomizationList
	if err := env.Client.List(ctx, &list, client.InNamespace(fluxNamespace)); err != nil {
		t.Fatal(err)
	}
	env.shardMu.Lock()
	defer env.shardMu.Unlock()
	var stray []string
	n := 0
	for _, k := range list.Items {
		shard, labelled := k.Labels[store.ShardLabel]
		if !labelled && !strings.HasPrefix(k.Name, "stores-") {
			continue
		}
		n++
		if !store.ValidShard(shard) || k.Name != store.ShardObjectName(shard) || !env.shardKustomizations[shard] {
			stray = append(stray, fmt.Sprintf("%s (%s=%q)", k.Name, store.ShardLabel, shard))
		}
	}
	if n != len(env.shardKustomizations) || len(stray) > 0 {
		t.Errorf("%d shard Kustomizations in %s, the environment created %d; not created by it: %d, e.g. %v",
			n, fluxNamespace, len(env.shardKustomizations), len(stray), stray[:min(len(stray), 5)])
	}
}
