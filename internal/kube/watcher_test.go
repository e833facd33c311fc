package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// shardState is what a Sink last heard about a shard's source or apply.
type shardState struct {
	Revision string
	Ready    *status.Condition
}

func (s shardState) String() string {
	if s.Ready == nil {
		return fmt.Sprintf("{%q, nil}", s.Revision)
	}
	return fmt.Sprintf("{%q, %+v}", s.Revision, *s.Ready)
}

// recordingSink keeps the last report per shard and every shard it was told about.
type recordingSink struct {
	mu        sync.Mutex
	connected bool
	source    map[string]shardState
	apply     map[string]shardState
	seen      map[string]bool
}

func newRecordingSink() *recordingSink {
	return &recordingSink{source: map[string]shardState{}, apply: map[string]shardState{}, seen: map[string]bool{}}
}

func (r *recordingSink) SetConnected(ok bool) { r.mu.Lock(); r.connected = ok; r.mu.Unlock() }
func (r *recordingSink) SetShardSource(shard, rev string, ready *status.Condition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.source[shard], r.seen[shard] = shardState{rev, ready}, true
}
func (r *recordingSink) SetShardApply(shard, rev string, ready *status.Condition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply[shard], r.seen[shard] = shardState{rev, ready}, true
}
func (r *recordingSink) SetRelease(string, *status.Release) {}
func (r *recordingSink) SetNamespace(string, bool)          {}
func (r *recordingSink) KubeEvent(string, status.KubeEvent) {}

func (r *recordingSink) shards() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.seen))
}

// waitFor polls until ok holds; on timeout it fails with what was last seen.
func waitFor(t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		done, last := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen %s", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *recordingSink) waitSource(t *testing.T, shard string, want func(shardState) bool, what string) {
	t.Helper()
	waitFor(t, "SetShardSource "+shard+": "+what, func() (bool, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		s, ok := r.source[shard]
		return ok && want(s), s.String()
	})
}

func (r *recordingSink) waitApply(t *testing.T, shard string, want func(shardState) bool, what string) {
	t.Helper()
	waitFor(t, "SetShardApply "+shard+": "+what, func() (bool, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		s, ok := r.apply[shard]
		return ok && want(s), s.String()
	})
}

func startWatcher(t *testing.T, ns string) (*Watcher, *recordingSink) {
	t.Helper()
	sink := newRecordingSink()
	w := newTestWatcher(t, ns, sink)
	w.Start()
	t.Cleanup(w.Stop)
	waitFor(t, "the watcher to connect (every informer listed)", func() (bool, string) {
		err := w.Check()
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return err == nil && sink.connected, fmt.Sprintf("Check()=%v connected=%v", err, sink.connected)
	})
	return w, sink
}

func externalArtifact(name string, labels map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if labels != nil {
		md["labels"] = labels
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact", "metadata": md, "spec": map[string]any{},
	}}
}

func TestWatchShardSources(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "watch-sources")
	w, sink := startWatcher(t, ns)
	ri := dynClient(t).Resource(ExternalArtifacts).Namespace(ns)

	a := testArtifact("1111111111111111111111111111111111111111")
	if err := w.PublishArtifact(ctx, "0a7", a); err != nil {
		t.Fatal(err)
	}
	sink.waitSource(t, "0a7", func(s shardState) bool {
		return s.Revision == a.Revision && s.Ready != nil && s.Ready.Status == "True" && s.Ready.Reason == "Succeeded"
	}, "the published revision, Ready=True")

	// Not the fleet's: no label, a value that is no shard. A publish after them, seen
	// through the same informer, shows they have been handled.
	for name, labels := range map[string]map[string]any{
		"unlabelled":  nil,
		"stores-zz":   {store.ShardLabel: "ZZ"},
		"stores-abcd": {store.ShardLabel: "abcd"},
		"stores-g1":   {store.ShardLabel: "g1"},
	} {
		if _, err := ri.Create(ctx, externalArtifact(name, labels), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	b := testArtifact("2222222222222222222222222222222222222222")
	if err := w.PublishArtifact(ctx, "0b7", b); err != nil {
		t.Fatal(err)
	}
	sink.waitSource(t, "0b7", func(s shardState) bool { return s.Revision == b.Revision }, "the published revision")
	if got := sink.shards(); !slices.Equal(got, []string{"0a7", "0b7"}) {
		t.Fatalf("shards reported %v; want [0a 0b]", got)
	}

	// A new revision, then deletion.
	a2 := testArtifact("3333333333333333333333333333333333333333")
	if err := w.PublishArtifact(ctx, "0a7", a2); err != nil {
		t.Fatal(err)
	}
	sink.waitSource(t, "0a7", func(s shardState) bool { return s.Revision == a2.Revision }, "the second revision")
	if err := ri.Delete(ctx, "stores-0a7", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sink.waitSource(t, "0a7", func(s shardState) bool { return s.Revision == "" && s.Ready == nil }, `("", nil) after deletion`)
}

func kustomization(name string, labels map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if labels != nil {
		md["labels"] = labels
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": md,
		"spec": map[string]any{
			"interval": "10m", "path": "./", "prune": true,
			"sourceRef": map[string]any{"kind": "ExternalArtifact", "name": name},
		},
	}}
}

// setKustomizationStatus writes a Kustomization's status as kustomize-controller
// would, through the status subresource.
func setKustomizationStatus(t *testing.T, ns, name string, observedGeneration int64, lastApplied, readyStatus, reason string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"status":{"observedGeneration":%d,"lastAppliedRevision":%q,"conditions":[`+
		`{"type":"Ready","status":%q,"reason":%q,"message":"Applied revision: %s","lastTransitionTime":%q}]}}`,
		observedGeneration, lastApplied, readyStatus, reason, lastApplied, time.Now().UTC().Format(time.RFC3339))
	_, err := dynClient(t).Resource(Kustomizations).Namespace(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatalf("write status of Kustomization %s: %v", name, err)
	}
}

func TestWatchShardApplies(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "watch-applies")
	_, sink := startWatcher(t, ns)
	ri := dynClient(t).Resource(Kustomizations).Namespace(ns)

	k, err := ri.Create(ctx, kustomization("stores-1f7", map[string]any{store.ShardLabel: "1f7"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Created, never reconciled: no status, so generation 1 is not observed.
	sink.waitApply(t, "1f7", func(s shardState) bool {
		return s.Revision == "" && s.Ready != nil && s.Ready.Status == "Unknown" && s.Ready.Reason == "Progressing"
	}, "Unknown/Progressing before any reconcile")

	gen := k.GetGeneration()
	setKustomizationStatus(t, ns, "stores-1f7", gen, "main@sha1:aaaa", "True", "ReconciliationSucceeded")
	sink.waitApply(t, "1f7", func(s shardState) bool {
		return s.Revision == "main@sha1:aaaa" && s.Ready != nil && s.Ready.Status == "True" &&
			s.Ready.Reason == "ReconciliationSucceeded" && s.Ready.Message == "Applied revision: main@sha1:aaaa"
	}, "the applied revision, Ready=True")

	// A spec change the controller has not seen yet: its Ready=True is stale.
	if _, err := ri.Patch(ctx, "stores-1f7", types.MergePatchType, []byte(`{"spec":{"interval":"5m"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	sink.waitApply(t, "1f7", func(s shardState) bool {
		return s.Revision == "main@sha1:aaaa" && s.Ready != nil && s.Ready.Status == "Unknown" && s.Ready.Reason == "Progressing"
	}, "Unknown/Progressing with the last applied revision kept while the new generation is unobserved")
	setKustomizationStatus(t, ns, "stores-1f7", gen+1, "main@sha1:bbbb", "False", "BuildFailed")
	sink.waitApply(t, "1f7", func(s shardState) bool {
		return s.Revision == "main@sha1:bbbb" && s.Ready != nil && s.Ready.Status == "False" && s.Ready.Reason == "BuildFailed"
	}, "Ready=False once the new generation is observed")

	// Not the fleet's, then one that is, through the same informer.
	for name, labels := range map[string]map[string]any{
		"infrastructure": nil,
		"stores-x1":      {store.ShardLabel: "x1"},
		"stores-2a":      {store.ShardLabel: "2a"},
		"stores-upper":   {store.ShardLabel: "AA"},
	} {
		if _, err := ri.Create(ctx, kustomization(name, labels), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ri.Create(ctx, kustomization("stores-e07", map[string]any{store.ShardLabel: "e07"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sink.waitApply(t, "e07", func(s shardState) bool { return s.Ready != nil }, "a report")
	if got := sink.shards(); !slices.Equal(got, []string{"1f7", "e07"}) {
		t.Fatalf("shards reported %v; want [1f e0]", got)
	}

	if err := ri.Delete(ctx, "stores-1f7", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sink.waitApply(t, "1f7", func(s shardState) bool { return s.Revision == "" && s.Ready == nil }, `("", nil) after deletion`)
}

// The trimmed objects the informers cache keep only the shard label and what the
// reports read.
func TestTrimShard(t *testing.T) {
	u := kustomization("stores-1f7", map[string]any{store.ShardLabel: "1f7", "other": "x"})
	u.Object["metadata"].(map[string]any)["managedFields"] = []any{map[string]any{"manager": "kustomize-controller"}}
	u.Object["metadata"].(map[string]any)["generation"] = int64(2)
	u.Object["status"] = map[string]any{
		"observedGeneration": int64(2), "lastAppliedRevision": "main@sha1:aaaa", "lastAttemptedRevision": "main@sha1:bbbb",
		"inventory":  map[string]any{"entries": []any{map[string]any{"id": "x"}}},
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}},
	}
	o, err := trimShard(u)
	if err != nil {
		t.Fatal(err)
	}
	tr := o.(*unstructured.Unstructured)
	if tr.GetLabels()[store.ShardLabel] != "1f7" || len(tr.GetLabels()) != 1 {
		t.Fatalf("labels %v; want only %s=1f", tr.GetLabels(), store.ShardLabel)
	}
	for _, p := range [][]string{{"spec"}, {"metadata", "managedFields"}, {"status", "inventory"}, {"status", "lastAttemptedRevision"}} {
		if _, ok, _ := unstructured.NestedFieldNoCopy(tr.Object, p...); ok {
			t.Errorf("%v kept", p)
		}
	}
	rev, ready := ToShardApply(tr)
	if rev != "main@sha1:aaaa" || ready == nil || ready.Status != "True" || ready.Message != "ok" {
		t.Fatalf("ToShardApply = %q, %+v", rev, ready)
	}

	// A shard that never applied: kustomize-controller leaves status.observedGeneration
	// behind on failure, but its Ready=False of the current generation is the answer
	// (the stores show why); one of an older generation says nothing yet.
	failed := func(condGen int64) *unstructured.Unstructured {
		f := kustomization("stores-6fe", map[string]any{store.ShardLabel: "6fe"})
		f.Object["metadata"].(map[string]any)["generation"] = int64(1)
		f.Object["status"] = map[string]any{"observedGeneration": int64(-1), "conditions": []any{map[string]any{
			"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "observedGeneration": condGen,
			"message": `ClusterRoleBinding/x dry-run failed: forbidden`, "lastTransitionTime": "2026-01-01T00:00:00Z"}}}
		o, err := trimShard(f)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*unstructured.Unstructured)
	}
	if _, ready := ToShardApply(failed(1)); ready == nil || ready.Status != "False" || !strings.Contains(ready.Message, "forbidden") {
		t.Errorf("a shard whose first apply failed: ToShardApply Ready %+v, want the failure", ready)
	}
	if _, ready := ToShardApply(failed(0)); ready == nil || ready.Status != "Unknown" {
		t.Errorf("a failure of an older generation: ToShardApply Ready %+v, want Unknown", ready)
	}
}

// The watcher connects only once the shard informers have listed too: as a user
// who may not list ExternalArtifacts, it stays "still listing" after every other
// informer has listed, and connects once the permission is granted.
func TestConnectWaitsForShardInformers(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "connect")
	user, err := apiEnv.ControlPlane.AddUser(envtest.User{Name: "kube-watcher-test"}, &rest.Config{QPS: 100, Burst: 200})
	if err != nil {
		t.Fatal(err)
	}
	rbac := func(resource, name string, obj map[string]any) {
		t.Helper()
		obj["apiVersion"], obj["metadata"] = "rbac.authorization.k8s.io/v1", map[string]any{"name": name}
		gvr := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: resource}
		if _, err := dynClient(t).Resource(gvr).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", resource, name, err)
		}
	}
	grant := func(name string, rules ...map[string]any) {
		t.Helper()
		r := make([]any, len(rules))
		for i, x := range rules {
			x["verbs"] = []any{"get", "list", "watch"}
			r[i] = x
		}
		rbac("clusterroles", name, map[string]any{"kind": "ClusterRole", "rules": r})
		rbac("clusterrolebindings", name, map[string]any{"kind": "ClusterRoleBinding",
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kube-watcher-test"}},
		})
	}
	grant("kube-watcher-test-all-but-artifacts",
		map[string]any{"apiGroups": []any{""}, "resources": []any{"namespaces", "events"}},
		map[string]any{"apiGroups": []any{"helm.toolkit.fluxcd.io"}, "resources": []any{"helmreleases"}},
		map[string]any{"apiGroups": []any{"kustomize.toolkit.fluxcd.io"}, "resources": []any{"kustomizations"}},
	)
	sink := newRecordingSink()
	w, err := New(Config{Rest: user.Config(), FluxNamespace: ns, ProbeInterval: 50 * time.Millisecond}, sink)
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	t.Cleanup(w.Stop)
	artifacts := w.informers[2] // Start's order: HelmReleases, Namespaces, ExternalArtifacts, …
	waitFor(t, "every informer but the ExternalArtifacts' to list", func() (bool, string) {
		for i, inf := range w.informers {
			if inf != artifacts && !inf.HasSynced() {
				return false, fmt.Sprintf("informer %d not synced", i)
			}
		}
		return !artifacts.HasSynced(), fmt.Sprintf("ExternalArtifacts synced=%v", artifacts.HasSynced())
	})
	// Ten probe rounds: time for a probe that ignored the shard informers to connect.
	time.Sleep(10 * w.cfg.ProbeInterval)
	if err := w.Check(); err == nil || !strings.Contains(err.Error(), "still listing") {
		t.Fatalf("Check() = %v while ExternalArtifacts cannot be listed; want still listing", err)
	}
	sink.mu.Lock()
	connected := sink.connected
	sink.mu.Unlock()
	if connected {
		t.Fatal("the Sink was told connected while ExternalArtifacts cannot be listed")
	}
	grant("kube-watcher-test-artifacts", map[string]any{"apiGroups": []any{"source.toolkit.fluxcd.io"}, "resources": []any{"externalartifacts"}})
	waitFor(t, "the watcher to connect once ExternalArtifacts may be listed", func() (bool, string) {
		err := w.Check()
		return err == nil, fmt.Sprintf("Check()=%v", err)
	})
}
