package kube

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// nopSink is for Watchers that are never started.
type nopSink struct{}

func (nopSink) SetConnected(bool)                                {}
func (nopSink) SetShardSource(string, string, *status.Condition) {}
func (nopSink) SetShardApply(string, string, *status.Condition)  {}
func (nopSink) SetRelease(string, *status.Release)               {}
func (nopSink) SetNamespace(string, bool)                        {}
func (nopSink) KubeEvent(string, status.KubeEvent)               {}

func newTestWatcher(t *testing.T, ns string, sink Sink) *Watcher {
	t.Helper()
	w, err := New(Config{Rest: apiConfig, FluxNamespace: ns, ProbeInterval: 50 * time.Millisecond}, sink)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func getArtifact(t *testing.T, ns, name string) *sourcev1.ExternalArtifact {
	t.Helper()
	u, err := dynClient(t).Resource(ExternalArtifacts).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ExternalArtifact %s/%s: %v", ns, name, err)
	}
	ea, err := fromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	return ea
}

// writeArtifactStatus writes an ExternalArtifact's status as another writer would,
// to set up what PublishArtifact must cope with.
func writeArtifactStatus(t *testing.T, ea *sourcev1.ExternalArtifact) {
	t.Helper()
	u, err := toUnstructured(ea)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dynClient(t).Resource(ExternalArtifacts).Namespace(ea.Namespace).UpdateStatus(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status of %s: %v", ea.Name, err)
	}
}

func sameArtifact(a, b Artifact) bool {
	ta, tb := a.LastUpdateTime, b.LastUpdateTime
	a.LastUpdateTime, b.LastUpdateTime = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

func testArtifact(rev string) Artifact {
	return Artifact{
		URL:      "http://127.0.0.1:9999/artifacts/local/ab/" + rev + ".tar.gz",
		Path:     "local/ab/" + rev + ".tar.gz",
		Revision: "main@sha1:" + rev,
		Digest:   "sha256:" + strings.Repeat(rev[:1], 64),
		Size:     1234,
		// Whole seconds: the API keeps lastUpdateTime to the second.
		LastUpdateTime: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}
}

func TestPublishArtifact(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "publish")
	w := newTestWatcher(t, ns, nopSink{})

	// Nothing published yet.
	if a, err := w.PublishedArtifact(ctx, "ab7"); err != nil || a != nil {
		t.Fatalf("PublishedArtifact of a missing object = %+v, %v; want nil, nil", a, err)
	}

	a1 := testArtifact("1111111111111111111111111111111111111111")
	if err := w.PublishArtifact(ctx, "ab7", a1); err != nil {
		t.Fatal(err)
	}
	ea := getArtifact(t, ns, "stores-ab7")
	if ea.Labels[store.ShardLabel] != "ab7" {
		t.Fatalf("labels %v; want %s=ab", ea.Labels, store.ShardLabel)
	}
	sa := ea.Status.Artifact
	if sa == nil || sa.URL != a1.URL || sa.Path != a1.Path || sa.Revision != a1.Revision || sa.Digest != a1.Digest ||
		sa.Size == nil || *sa.Size != a1.Size || !sa.LastUpdateTime.Time.Equal(a1.LastUpdateTime) {
		t.Fatalf("status.artifact = %+v; want %+v", sa, a1)
	}
	ready := apimeta.FindStatusCondition(ea.Status.Conditions, "Ready")
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != "Succeeded" ||
		ready.Message != "stored artifact for revision '"+a1.Revision+"'" || ready.ObservedGeneration != ea.Generation ||
		ready.LastTransitionTime.IsZero() {
		t.Fatalf("Ready = %+v (generation %d)", ready, ea.Generation)
	}
	got, err := w.PublishedArtifact(ctx, "ab7")
	if err != nil || got == nil || !sameArtifact(*got, a1) {
		t.Fatalf("PublishedArtifact = %+v, %v; want %+v", got, err, a1)
	}

	// Ready stays True: its lastTransitionTime must stay. An old time written
	// beforehand shows whether it was kept or reset to now.
	old := metav1.NewTime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	ready.LastTransitionTime = old
	writeArtifactStatus(t, ea)
	a2 := testArtifact("2222222222222222222222222222222222222222")
	a2.Size = 99
	a2.LastUpdateTime = a1.LastUpdateTime.Add(time.Minute)
	if err := w.PublishArtifact(ctx, "ab7", a2); err != nil {
		t.Fatal(err)
	}
	ea2 := getArtifact(t, ns, "stores-ab7")
	if ea2.Status.Artifact == nil || ea2.Status.Artifact.Revision != a2.Revision || ea2.Status.Artifact.Digest != a2.Digest {
		t.Fatalf("second publish: status.artifact = %+v; want revision %s", ea2.Status.Artifact, a2.Revision)
	}
	ready2 := apimeta.FindStatusCondition(ea2.Status.Conditions, "Ready")
	if ready2 == nil || ready2.Status != metav1.ConditionTrue || !ready2.LastTransitionTime.Equal(&old) ||
		!strings.Contains(ready2.Message, a2.Revision) {
		t.Fatalf("second publish: Ready = %+v; want True, message naming %s, lastTransitionTime kept at %v", ready2, a2.Revision, old)
	}
	if got, err := w.PublishedArtifact(ctx, "ab7"); err != nil || got == nil || !sameArtifact(*got, a2) {
		t.Fatalf("PublishedArtifact after second publish = %+v, %v; want %+v", got, err, a2)
	}

	// Ready was False (someone else's write): becoming True is a transition.
	ready2.Status, ready2.Reason, ready2.LastTransitionTime = metav1.ConditionFalse, "Failed", old
	writeArtifactStatus(t, ea2)
	if err := w.PublishArtifact(ctx, "ab7", a2); err != nil {
		t.Fatal(err)
	}
	ready3 := apimeta.FindStatusCondition(getArtifact(t, ns, "stores-ab7").Status.Conditions, "Ready")
	if ready3 == nil || ready3.Status != metav1.ConditionTrue || ready3.Reason != "Succeeded" || ready3.LastTransitionTime.Equal(&old) {
		t.Fatalf("Ready after False = %+v; want True with a new lastTransitionTime", ready3)
	}
}

func TestPublishedArtifactWithoutStatus(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "published-no-status")
	w := newTestWatcher(t, ns, nopSink{})
	// An ExternalArtifact someone created but nobody published to.
	ea := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
		"metadata": map[string]any{"name": "stores-cd7", "labels": map[string]any{store.ShardLabel: "cd7"}},
		"spec":     map[string]any{},
	}}
	if _, err := dynClient(t).Resource(ExternalArtifacts).Namespace(ns).Create(ctx, ea, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, err := w.PublishedArtifact(ctx, "cd7"); err != nil || a != nil {
		t.Fatalf("PublishedArtifact without status.artifact = %+v, %v; want nil, nil", a, err)
	}
}

func TestPublishedArtifacts(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "published-all")
	w := newTestWatcher(t, ns, nopSink{})
	want := map[string]Artifact{
		"007": testArtifact("1111111111111111111111111111111111111111"),
		"ff7": testArtifact("2222222222222222222222222222222222222222"),
	}
	for shard, a := range want {
		if err := w.PublishArtifact(ctx, shard, a); err != nil {
			t.Fatal(err)
		}
	}
	// Neither is a published shard: no artifact; a label that is no shard.
	ri := dynClient(t).Resource(ExternalArtifacts).Namespace(ns)
	for name, shard := range map[string]string{"stores-cd7": "cd7", "stores-zzz": "zzz"} {
		ea := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
			"metadata": map[string]any{"name": name, "labels": map[string]any{store.ShardLabel: shard}},
			"spec":     map[string]any{},
		}}
		if _, err := ri.Create(ctx, ea, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := w.PublishedArtifacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("PublishedArtifacts = %+v; want shards 00 and ff", got)
	}
	for shard, a := range want {
		if g, ok := got[shard]; !ok || !sameArtifact(g, a) {
			t.Errorf("shard %s: %+v; want %+v", shard, g, a)
		}
	}
}

// An object of that name without the shard label was not made by gitops-api (or was
// relabelled): publishing refuses to touch it rather than change its labels, which
// the platform chart's admission policy forbids anyway.
func TestPublishArtifactRefusesUnlabelled(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "publish-label")
	w := newTestWatcher(t, ns, nopSink{})
	ea := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
		"metadata": map[string]any{"name": "stores-ef7", "labels": map[string]any{"team": "platform"}},
		"spec":     map[string]any{},
	}}
	if _, err := dynClient(t).Resource(ExternalArtifacts).Namespace(ns).Create(ctx, ea, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := w.PublishArtifact(ctx, "ef7", testArtifact("3333333333333333333333333333333333333333"))
	if err == nil || !strings.Contains(err.Error(), "without label") {
		t.Fatalf("PublishArtifact over an unlabelled object: %v, want a refusal naming the label", err)
	}
	got := getArtifact(t, ns, "stores-ef7")
	if got.Labels[store.ShardLabel] != "" || got.Status.Artifact != nil {
		t.Fatalf("the unlabelled object was changed: labels %v, artifact %+v", got.Labels, got.Status.Artifact)
	}
}

func TestPublishArtifactRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "publish-bad")
	w := newTestWatcher(t, ns, nopSink{})
	good := testArtifact("4444444444444444444444444444444444444444")
	noDigest := good
	noDigest.Digest = ""
	for _, c := range []struct {
		shard string
		a     Artifact
		want  string
	}{
		{"ABC", good, "three lowercase hex"},
		{"ab", good, "three lowercase hex"},
		{"abcd", good, "three lowercase hex"},
		{"g00", good, "three lowercase hex"},
		{"123", noDigest, "digest is empty"},
	} {
		err := w.PublishArtifact(ctx, c.shard, c.a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("PublishArtifact(%q) = %v; want an error saying %q", c.shard, err, c.want)
		}
	}
	// Nothing half-written.
	list, err := dynClient(t).Resource(ExternalArtifacts).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Fatalf("%d ExternalArtifacts created from bad input", len(list.Items))
	}
	if _, err := w.PublishedArtifact(ctx, "A1"); err == nil {
		t.Fatal("PublishedArtifact accepted shard A1")
	}
}

// Three publishers of one new shard race on its creation and its status: each must
// retry what it lost and succeed (each rival can make it lose at most twice, its
// create and its status write, within retry.DefaultRetry's five attempts).
func TestPublishArtifactConcurrent(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "publish-race")
	revs := []string{
		"5555555555555555555555555555555555555555",
		"6666666666666666666666666666666666666666",
		"7777777777777777777777777777777777777777",
	}
	var wg sync.WaitGroup
	errs := make([]error, len(revs))
	for i, rev := range revs {
		w := newTestWatcher(t, ns, nopSink{})
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = w.PublishArtifact(ctx, "997", testArtifact(rev)) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("publisher %d: %v", i, err)
		}
	}
	got := getArtifact(t, ns, "stores-997").Status.Artifact
	if got == nil {
		t.Fatal("no status.artifact after the race")
	}
	found := false
	for _, rev := range revs {
		found = found || got.Revision == "main@sha1:"+rev
	}
	if !found {
		t.Fatalf("revision %s is none of the published ones", got.Revision)
	}
}
