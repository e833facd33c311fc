package kube

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// RequestSourceFetch sets the reconcile request annotation on the GitRepository, a new
// value at each call (source-controller acts on a change of it), and leaves every other
// field as it was; a GitRepository that does not exist is an error.
func TestRequestSourceFetch(t *testing.T) {
	ns := namespace(t, "source-fetch")
	w := newTestWatcher(t, ns, nopSink{})
	ctx := context.Background()
	repo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": "fleet", "namespace": ns, "annotations": map[string]any{"keep": "me"}},
		"spec":     map[string]any{"interval": "10m", "url": "http://127.0.0.1:1/fleet.git", "ref": map[string]any{"branch": "main"}},
	}}
	created, err := dynClient(t).Resource(GitRepositories).Namespace(ns).Create(ctx, repo, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	read := func() *unstructured.Unstructured {
		u, err := dynClient(t).Resource(GitRepositories).Namespace(ns).Get(ctx, "fleet", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if err := w.RequestSourceFetch(ctx, "fleet"); err != nil {
		t.Fatal(err)
	}
	first := read()
	at := first.GetAnnotations()[ReconcileRequestAnnotation]
	if at == "" || first.GetAnnotations()["keep"] != "me" || len(first.GetAnnotations()) != 2 {
		t.Fatalf("annotations after the request: %v", first.GetAnnotations())
	}
	if first.GetGeneration() != created.GetGeneration() {
		t.Errorf("generation %d → %d: the request changed the spec", created.GetGeneration(), first.GetGeneration())
	}
	if err := w.RequestSourceFetch(ctx, "fleet"); err != nil {
		t.Fatal(err)
	}
	if again := read().GetAnnotations()[ReconcileRequestAnnotation]; again == at {
		t.Errorf("a second request kept the value %s: Flux would not act on it", at)
	}
	if err := w.RequestSourceFetch(ctx, "absent"); err == nil {
		t.Error("a request for a GitRepository that does not exist succeeded")
	}
}
